package signing_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/pipewarden/pipewarden/internal/signing"
)

// BenchmarkComputeManifest hashes a generated 256 MiB model (two big files, 64 small ones) with
// 1 and 2 workers; b.SetBytes makes `go test -bench` print MB/s. The files are in the page cache
// after the first iteration, so this measures hashing, not the disk.
func BenchmarkComputeManifest(b *testing.B) {
	root := b.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	total := int64(0)
	writeRandom := func(name string, size int) {
		buf := make([]byte, size)
		for i := range buf {
			buf[i] = byte(rng.Uint32())
		}
		if err := os.WriteFile(filepath.Join(root, name), buf, 0o644); err != nil {
			b.Fatal(err)
		}
		total += int64(size)
	}
	writeRandom("model-00001.safetensors", 96<<20)
	writeRandom("model-00002.safetensors", 96<<20)
	for i := range 64 {
		writeRandom(fmt.Sprintf("small-%02d.json", i), 1<<20)
	}
	for _, method := range []string{signing.MethodFiles, signing.MethodShards} {
		for _, workers := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/workers=%d", method, workers), func(b *testing.B) {
				b.SetBytes(total)
				for b.Loop() {
					if _, err := signing.ComputeManifest(context.Background(), root,
						signing.Options{Method: method, ShardSize: 32 << 20, Workers: workers}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
