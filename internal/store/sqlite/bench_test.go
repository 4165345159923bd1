package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/store/sqlite"
	"github.com/pipewarden/pipewarden/internal/store/storetest"
)

// BenchmarkAppendEvents measures one commit of 1000 events (what group commit produces under
// load), per event.
func BenchmarkAppendEvents(b *testing.B) {
	for _, sync := range []string{"full", "normal"} {
		b.Run("sync="+sync, func(b *testing.B) {
			s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "b.db"), sqlite.Options{Synchronous: sync})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			types := event.Types()
			now := time.Now()
			seq := 0
			batches := make([][]event.Event, b.N)
			for i := range batches {
				batches[i] = make([]event.Event, 1000)
				for j := range batches[i] {
					seq++
					batches[i][j] = storetest.Ev(b, fmt.Sprintf("e%d", seq), types[j%len(types)], fmt.Sprintf("subj%d", j%50), now)
				}
			}
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.AppendEvents(context.Background(), batches[i]); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			n := float64(b.N * 1000)
			b.ReportMetric(n/b.Elapsed().Seconds(), "events/s")
			// CPU time per event is steadier than wall time on a shared machine.
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/n, "cpu-ns/event")
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAppendOneEvent measures a commit of a single event (what single-event requests at a
// low rate produce), per commit; synchronous=normal, so that the CPU is not hidden behind the
// disk.
func BenchmarkAppendOneEvent(b *testing.B) {
	s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "b.db"), sqlite.Options{Synchronous: "normal"})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	types := event.Types()
	now := time.Now()
	evs := make([]event.Event, b.N)
	for i := range evs {
		evs[i] = storetest.Ev(b, fmt.Sprintf("one%d", i), types[i%len(types)], fmt.Sprintf("subj%d", i%50), now)
	}
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := range evs {
		if _, err := s.AppendEvents(context.Background(), evs[i:i+1]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/commit")
}
