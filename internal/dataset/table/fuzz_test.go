package table_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

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
