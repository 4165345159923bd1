package main

import "golang.org/x/sys/unix"

// pin keeps the calling (locked) thread on one CPU.
func pin(cpu int) {
	var set unix.CPUSet
	set.Set(cpu)
	_ = unix.SchedSetaffinity(0, &set) // best effort: unpinned, the probe still measures gaps
}
