package modelwatch_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/modelwatch"
)

// genModel writes a model of `big` files of bigSize bytes and `small` files of 4 KiB, with
// seeded random contents.
func genModel(b *testing.B, big int, bigSize int64, small int) string {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "model")
	rng := rand.NewChaCha8([32]byte{1, 2})
	buf := make([]byte, 1<<20)
	for i := range big {
		p := filepath.Join(dir, fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, big))
		os.MkdirAll(dir, 0o755)
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		for left := bigSize; left > 0; left -= int64(len(buf)) {
			rng.Read(buf)
			f.Write(buf[:min(left, int64(len(buf)))])
		}
		f.Close()
	}
	for i := range small {
		small := buf[:4096]
		rng.Read(small)
		put(b, filepath.Join(dir, "shards", fmt.Sprintf("%03d", i%100), fmt.Sprintf("part-%05d.bin", i)), small)
	}
	return dir
}

// BenchmarkDetectionLatency measures the time from a write into a watched model to the critical
// finding reaching the reporter (ns/op is that latency).
func BenchmarkDetectionLatency(b *testing.B) {
	cases := []struct {
		name       string
		big        int
		bigSize    int64
		small      int
		target     string
		targetSize int
	}{
		{"small model, 4 KiB file", 0, 0, 10, "shards/000/part-00000.bin", 4096},
		{"1 GiB model of 2000 files, 4 KiB file", 2, 512 << 20, 2000, "shards/007/part-00007.bin", 4096},
		{"1 GiB model, rewrite a 64 MiB file", 2, 512 << 20, 0, "extra.safetensors", 64 << 20},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			m := newManager(b, 0)
			dir := genModel(b, tc.big, tc.bigSize, tc.small)
			target := filepath.Join(dir, tc.target)
			content := make([]byte, tc.targetSize)
			put(b, target, content)
			approve(b, m, "bench", dir)
			rep, c := chanReporter()
			w := startWatcher(b, modelwatch.WatcherOptions{Manager: m, Reporter: rep, Rescan: -1,
				Watches: []modelwatch.Watch{{Name: "bench", Path: dir}}})
			waitChecked(b, w, "bench")
			var total time.Duration
			b.ResetTimer()
			for i := range b.N {
				content[0], content[1], content[2] = byte(i), byte(i>>8), 0xff // a new state each time
				start := time.Now()
				if err := os.WriteFile(target, content, 0o644); err != nil {
					b.Fatal(err)
				}
				r := nextReport(b, c)
				total += r.at.Sub(start)
			}
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/detection")
		})
	}
}

// BenchmarkFullRehash is the watcher's periodic safety net and the rollback check: hash a model
// and compare it with its approval (signing's parallel hashing). MB/s is hashing throughput.
func BenchmarkFullRehash(b *testing.B) {
	for _, workers := range []int{1, 0} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			dir := genModel(b, 4, 128<<20, 1000)
			m, err := modelwatch.Open(modelwatch.Options{DataDir: b.TempDir(), Workers: workers})
			if err != nil {
				b.Fatal(err)
			}
			a := approve(b, m, "bench", dir)
			var size int64
			for _, f := range a.Files {
				size += f.Size
			}
			b.SetBytes(size)
			b.ResetTimer()
			for range b.N {
				_, d, err := m.Check(context.Background(), "bench")
				if err != nil || !d.Empty() {
					b.Fatal(err, d)
				}
			}
		})
	}
}

// BenchmarkRollback restores a 512 MiB model (one changed file) from the content store: staging
// copy, fsync, exchange, quarantine, verification.
func BenchmarkRollback(b *testing.B) {
	dir := genModel(b, 4, 128<<20, 100)
	m := newManager(b, 0)
	approve(b, m, "bench", dir)
	target := filepath.Join(dir, "shards", "000", "part-00000.bin")
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		put(b, target, []byte(fmt.Sprint("tampered ", i)))
		b.StartTimer()
		res, err := m.Rollback(context.Background(), "bench")
		if err != nil || !res.Verified || res.AlreadyApproved {
			b.Fatal(err, res)
		}
	}
}
