package table_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/pipewarden/pipewarden/internal/dataset/table"
)

func fuzzReader(t *testing.T, format string, data []byte) {
	opts := table.Options{MaxLineBytes: 4096, MaxColumns: 64}
	r, err := table.NewReader(bytes.NewReader(data), format, opts)
	if err != nil {
		return
	}
	n := len(r.Columns())
	if n == 0 || n > opts.MaxColumns {
		t.Fatalf("%d columns", n)
	}
	for rows := 0; rows < 100000; rows++ {
		f, err := r.Next()
		if errors.Is(err, io.EOF) || err != nil {
			return
		}
		if len(f) != n {
			t.Fatalf("row of %d fields, %d columns", len(f), n)
		}
		for _, x := range f {
			if len(x.B) > opts.MaxLineBytes {
				t.Fatalf("field of %d bytes beyond the line limit", len(x.B))
			}
		}
	}
}

func FuzzCSV(f *testing.F) {
	for _, s := range []string{"a,b\n1,2\n", "a;b\n\"x;\"\"y\",2\n", "a\n\"unclosed\n", "\xEF\xBB\xBFa\tb\r\n1\t\n", "a,b\n1,2,3\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzReader(t, "csv", data) })
}

func FuzzJSONL(f *testing.F) {
	for _, s := range []string{"{\"a\":1,\"b\":\"x\"}\n{\"b\":null}\n", "{\"a\":[1]}\n", "{}\n", "{\"a\":1}{\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzReader(t, "jsonl", data) })
}

// FuzzParquet writes each input to a file (Parquet is read through io.ReaderAt) and reads it to
// the end: malformed footers, page headers and encodings must give errors, never panics or
// unbounded allocation.
func FuzzParquet(f *testing.F) {
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[struct {
		X float64 `parquet:"x"`
		L string  `parquet:"label,optional"`
	}](&buf)
	w.Write([]struct {
		X float64 `parquet:"x"`
		L string  `parquet:"label,optional"`
	}{{1.5, "a"}, {2, ""}, {-3, "b"}})
	w.Close()
	f.Add(buf.Bytes())
	f.Add([]byte("PAR1"))
	f.Add([]byte("PAR1\x00\x00\x00\x00PAR1"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		p := filepath.Join(dir, "in.parquet")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		tf, err := table.Open(p, table.Options{MaxColumns: 64})
		if err != nil {
			return
		}
		defer tf.Close()
		n := len(tf.Columns())
		for rows := 0; rows < 100000; rows++ {
			fs, err := tf.Next()
			if err != nil {
				return
			}
			if len(fs) != n {
				t.Fatalf("row of %d fields, %d columns", len(fs), n)
			}
		}
	})
}
