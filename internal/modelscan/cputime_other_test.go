//go:build !unix

package modelscan_test

import "time"

// cpuTime is unknown here; benchmarks then report wall-clock figures only.
func cpuTime() time.Duration { return 0 }
