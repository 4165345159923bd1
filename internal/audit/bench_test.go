package audit_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/audit"
)

// eventRecords are records shaped like the daemon's event records (about 330 bytes each).
func eventRecords(from, n int) []audit.Record {
	out := make([]audit.Record, n)
	for i := range out {
		k := from + i
		out[i] = audit.Record{Kind: audit.KindEvent, Actor: "ingest-ci", Action: "ingested", Subject: fmt.Sprintf("dataset/asset-%d", k%50),
			Time: t0.Add(time.Duration(k) * time.Millisecond),
			Data: map[string]any{"id": fmt.Sprintf("01J%017d", k), "type": "pipewarden.data.batch", "source": "s3://bucket/path",
				"digest": fmt.Sprintf("sha256:%064x", k)}}
	}
	return out
}

// BenchmarkAppend appends batches as the daemon does (one goroutine, fsync per batch,
// checkpoints every 10,000 records); the figure to read is records/s.
func BenchmarkAppend(b *testing.B) {
	for _, batch := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			l := openLog(b, b.TempDir(), audit.Options{CheckpointEvery: 10000})
			defer l.Close()
			recs := eventRecords(0, batch)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := l.Append(context.Background(), recs...); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkVerifyDir verifies a log of 100,000 records; scale by ten for the million of
// docs/benchmarks/audit.md (bench/audit/run.sh measures that end to end).
func BenchmarkVerifyDir(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "audit")
	l := openLog(b, dir, audit.Options{CheckpointEvery: 10000})
	for i := 0; i < 100_000; i += 10000 {
		if err := l.Append(context.Background(), eventRecords(i, 10000)...); err != nil {
			b.Fatal(err)
		}
	}
	l.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := audit.VerifyDir(dir, audit.VerifyOptions{})
		if err != nil || !res.OK() {
			b.Fatal(err, res.Problems)
		}
	}
	b.ReportMetric(100_000*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
