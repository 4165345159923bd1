//go:build !linux

package main

import (
	"errors"
	"os"
)

func holdCPULatency() (*os.File, error) {
	return nil, errors.New("cpu latency QoS: Linux only")
}
