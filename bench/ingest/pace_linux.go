package main

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// pacer sleeps until absolute points in time with clock_nanosleep on a thread of its own.
// time.Sleep rounds a wait of under a millisecond up to the runtime's next poll (on this VM
// it wakes 0.5 ms late at the median), which would bunch a 1,000/s schedule into pairs and
// add the generator's own lateness to every latency measured from the schedule.
type pacer struct {
	base  time.Time
	mono0 time.Duration // CLOCK_MONOTONIC at base
}

func newPacer(base time.Time) *pacer {
	runtime.LockOSThread() // the caller's goroutine keeps this thread; it only paces
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return &pacer{base: base, mono0: time.Duration(ts.Nano()) - time.Since(base)}
}

// until returns at or shortly after at.
func (p *pacer) until(at time.Time) {
	if time.Until(at) <= 0 {
		return
	}
	ts := unix.NsecToTimespec(int64(p.mono0 + at.Sub(p.base)))
	for {
		err := unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &ts, nil)
		if err != unix.EINTR { // Go's signals (preemption) interrupt the sleep
			return
		}
	}
}
