//go:build unix

package modelscan_test

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time (user and system) the process has used: on a shared, loaded machine
// it measures the work done, where wall time also counts the waiting.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
