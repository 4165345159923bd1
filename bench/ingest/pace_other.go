//go:build !linux

package main

import "time"

// pacer falls back to time.Sleep off Linux (coarser: see pace_linux.go).
type pacer struct{}

func newPacer(time.Time) *pacer { return &pacer{} }

func (*pacer) until(at time.Time) {
	if d := time.Until(at); d > 0 {
		time.Sleep(d)
	}
}
