package dataset_test

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/pipewarden/pipewarden/internal/dataset"
	"github.com/pipewarden/pipewarden/internal/dataset/table"
)

// numericCSV writes rows x cols of the bench/data/gen shape: column c ~ N(10c, (c+1)^2), 4
// decimals.
func numericCSV(rows, cols int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	var b bytes.Buffer
	for c := range cols {
		if c > 0 {
			b.WriteByte(',')
		}
		b.WriteString("f" + strconv.Itoa(c))
	}
	b.WriteByte('\n')
	buf := make([]byte, 0, 32)
	for range rows {
		for c := range cols {
			if c > 0 {
				b.WriteByte(',')
			}
			buf = strconv.AppendFloat(buf[:0], rng.NormFloat64()*float64(c+1)+float64(10*c), 'f', 4, 64)
			b.Write(buf)
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// BenchmarkCheckNumericCSV is the per-row cost of data check on the end-to-end benchmark's
// shape (20 numeric columns) against a 50,000-row baseline with the default 5,000-row sample.
func BenchmarkCheckNumericCSV(b *testing.B) {
	const rows = 200_000
	base, batch := numericCSV(50_000, 20, 1), numericCSV(rows, 20, 2)
	br, _ := table.NewReader(bytes.NewReader(base), "csv", table.Options{})
	bl, err := dataset.Profile(br, dataset.ProfileOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(batch)))
	b.ResetTimer()
	for b.Loop() {
		r, _ := table.NewReader(bytes.NewReader(batch), "csv", table.Options{})
		if _, err := dataset.Check(bl, r, dataset.CheckOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
