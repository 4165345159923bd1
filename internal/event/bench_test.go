package event_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pipewarden/pipewarden/internal/event"
)

// BenchmarkDecodeBatch100 decodes and validates a batch of 100 events of every type.
func BenchmarkDecodeBatch100(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("[")
	types := event.Types()
	for i := 0; i < 100; i++ {
		if i > 0 {
			sb.WriteString(",")
		}
		typ := types[i%len(types)]
		fmt.Fprintf(&sb, `{"specversion":"1.0","id":"b%d","source":"//bench","type":%q,"time":"2026-11-26T10:00:00Z","data":%s}`, i, typ, event.Examples()[typ])
	}
	sb.WriteString("]")
	body := []byte(sb.String())
	d := event.NewDecoder(event.Limits{}, nil)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Decode(body); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
}
