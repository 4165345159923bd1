package main

import (
	"encoding/binary"
	"fmt"
	"os"
)

// holdCPULatency asks the kernel, through PM QoS, to keep every CPU out of idle states that
// take longer than 0 µs to leave (on the benchmark VM: the halt that hands an idle virtual CPU
// back to the hypervisor, whose wake-up takes up to milliseconds) for as long as the returned
// file stays open. It is what tuned's latency-performance profile does; it needs write access
// to /dev/cpu_dma_latency (root).
func holdCPULatency() (*os.File, error) {
	f, err := os.OpenFile("/dev/cpu_dma_latency", os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("cpu latency QoS: %w", err)
	}
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], 0)
	if _, err := f.Write(b[:]); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu latency QoS: %w", err)
	}
	return f, nil
}
