package main

import (
	"fmt"
	"runtime"
	"sort"
	"sync"
	"time"
)

// probeCPU measures how long this machine keeps a runnable thread off its processor, with no
// load of ours: one thread per CPU reads the clock in a loop for d and records every gap over
// 0.5 ms (the thread was not running: another task on that CPU, a kernel thread, or the
// hypervisor not running the virtual CPU). Every request of a run crosses several threads, so a
// run's tail cannot be lower than what these gaps allow; on the benchmark VM kdamond alone
// holds a CPU for 2–4 ms a few times a second.
func probeCPU(d time.Duration) {
	n := runtime.NumCPU()
	type result struct {
		gaps  []time.Duration
		total time.Duration
	}
	res := make([]result, n)
	var wg sync.WaitGroup
	for cpu := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			pin(cpu)
			end := time.Now().Add(d)
			last := time.Now()
			for last.Before(end) {
				now := time.Now()
				if g := now.Sub(last); g > 500*time.Microsecond {
					res[cpu].gaps = append(res[cpu].gaps, g)
					res[cpu].total += g
				}
				last = now
			}
		}()
	}
	wg.Wait()
	for cpu, r := range res {
		sort.Slice(r.gaps, func(i, j int) bool { return r.gaps[i] > r.gaps[j] })
		over := func(t time.Duration) int {
			return sort.Search(len(r.gaps), func(i int) bool { return r.gaps[i] <= t })
		}
		longest := time.Duration(0)
		if len(r.gaps) > 0 {
			longest = r.gaps[0]
		}
		fmt.Printf("cpu %d: off-CPU gaps in %s: %d over 1 ms, %d over 5 ms, longest %s, %.1f %% of the time\n",
			cpu, d, over(time.Millisecond), over(5*time.Millisecond), longest.Round(10*time.Microsecond), 100*r.total.Seconds()/d.Seconds())
	}
}
