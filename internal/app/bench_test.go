package app_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pipewarden/pipewarden/internal/app"
	"github.com/pipewarden/pipewarden/internal/config"
	"github.com/pipewarden/pipewarden/internal/event"
)

// BenchmarkIngestBatch100 measures the in-process cost of POST /v1/events with batches of 100
// (decode, validate, group commit to SQLite, bus), without the network. Reported per event.
func BenchmarkIngestBatch100(b *testing.B) {
	for _, sync := range []string{"full", "normal"} {
		b.Run("sync="+sync, func(b *testing.B) {
			cfg := config.Default()
			cfg.DataDir = b.TempDir()
			cfg.Store.SQLite.Synchronous = sync
			a, err := app.New(context.Background(), app.Options{Config: cfg})
			if err != nil {
				b.Fatal(err)
			}
			defer a.Stop(context.Background())
			tok, _ := os.ReadFile(app.TokenFile(cfg.DataDir))
			auth := "Bearer " + strings.TrimSpace(string(tok))
			h := a.Handler()
			var seq atomic.Int64
			types := event.Types()
			ex := event.Examples()
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var sb strings.Builder
				for pb.Next() {
					sb.Reset()
					sb.WriteString("[")
					for i := 0; i < 100; i++ {
						if i > 0 {
							sb.WriteString(",")
						}
						typ := types[i%len(types)]
						fmt.Fprintf(&sb, `{"specversion":"1.0","id":"b%d","source":"//bench","type":%q,"time":"2026-11-26T10:00:00Z","data":%s}`, seq.Add(1), typ, ex[typ])
					}
					sb.WriteString("]")
					req := httptest.NewRequest("POST", "/v1/events", strings.NewReader(sb.String()))
					req.Header.Set("Authorization", auth)
					req.Header.Set("Content-Type", "application/cloudevents-batch+json")
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != http.StatusAccepted {
						b.Fatalf("status %d: %s", rec.Code, rec.Body)
					}
				}
			})
			b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
