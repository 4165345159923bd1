package dataset_test

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/pipewarden/pipewarden/internal/dataset"
)

func TestRecords(t *testing.T) {
	cases := []struct {
		name, in string
		cols     string
		rows     []string // fields joined by |, null as ~
		err      string
	}{
		{"union of keys", `[{"a":1,"b":"x"},{"b":null,"c":true},{"a":-2.5e3}]`, "a,b,c", []string{"1|x|~", "~|~|true", "-2.5e3|~|~"}, ""},
		{"not an array", `{"a":1}`, "", nil, "want a JSON array"},
		{"not objects", `[1,2]`, "", nil, "records[0]: want a JSON object"},
		{"nested", `[{"a":{"b":1}}]`, "", nil, `records[0]: key "a": nested`},
		{"empty", `[]`, "", nil, "empty array"},
		{"trailing", `[{"a":1}] x`, "", nil, "trailing data"},
		{"broken", `[{"a":1},`, "", nil, "records[1]: want a JSON object"},
		{"unclosed object", `[{"a":1`, "", nil, "records[0]: invalid JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := dataset.Records([]byte(c.in))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(r.Columns(), ","); got != c.cols {
				t.Errorf("columns %s, want %s", got, c.cols)
			}
			for i, want := range c.rows {
				fs, err := r.Next()
				if err != nil {
					t.Fatalf("row %d: %v", i, err)
				}
				var parts []string
				for _, f := range fs {
					if f.Null {
						parts = append(parts, "~")
					} else {
						parts = append(parts, string(f.B))
					}
				}
				if got := strings.Join(parts, "|"); got != want {
					t.Errorf("row %d: %s, want %s", i, got, want)
				}
			}
			if _, err := r.Next(); !errors.Is(err, io.EOF) {
				t.Errorf("after the rows: %v", err)
			}
		})
	}
}

func FuzzRecords(f *testing.F) {
	for _, s := range []string{`[{"a":1,"b":"x"},{"c":null}]`, `[{"a":[1]}]`, `[]`, `[{"a":1}`, `[{"a":true,"a":2}]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		r, err := dataset.Records(data)
		if err != nil {
			return
		}
		n := len(r.Columns())
		if n == 0 || n > dataset.MaxRecordColumns {
			t.Fatalf("%d columns", n)
		}
		for {
			fs, err := r.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil || len(fs) != n {
				t.Fatalf("row of %d fields for %d columns (err %v)", len(fs), n, err)
			}
		}
	})
}
