package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
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
			batch := make([]event.Event, 1000)
			now := time.Now()
			seq := 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				for j := range batch {
					seq++
					batch[j] = storetest.Ev(b, fmt.Sprintf("e%d", seq), types[j%len(types)], "subj", now)
				}
				b.StartTimer()
				if _, err := s.AppendEvents(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "events/s")
		})
	}
}
