package table_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/pipewarden/pipewarden/internal/dataset/table"
)

func readAll(t *testing.T, r table.Reader) ([]string, [][]string, error) {
	t.Helper()
	var rows [][]string
	for {
		f, err := r.Next()
		if errors.Is(err, io.EOF) {
			return r.Columns(), rows, nil
		}
		if err != nil {
			return r.Columns(), rows, err
		}
		row := make([]string, len(f))
		for i, x := range f {
			if x.Null {
				row[i] = "<null>"
			} else {
				row[i] = string(x.B)
			}
		}
		rows = append(rows, row)
	}
}

func TestCSV(t *testing.T) {
	cases := []struct {
		name, in string
		cols     string
		rows     string
	}{
		{"comma", "a,b\n1,2\n3,\n", "a|b", "1,2;3,<null>"},
		{"semicolon sniffed", "a;b;c\n1;2,5;x\n", "a|b|c", "1,2,5,x"},
		{"tab sniffed", "a\tb\n1\t2\n", "a|b", "1,2"},
		{"quotes", "name,note\n\"Smith, J\",\"said \"\"hi\"\"\"\n", "name|note", "Smith, J,said \"hi\""},
		{"quoted newline", "a,b\n\"line1\nline2\",2\n", "a|b", "line1\nline2,2"},
		{"crlf and bom", "\xEF\xBB\xBFa,b\r\n1,2\r\n", "a|b", "1,2"},
		{"blank lines skipped", "a\n1\n\n2\n", "a", "1;2"},
		{"no trailing newline", "a,b\n1,2", "a|b", "1,2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := table.NewReader(strings.NewReader(c.in), "csv", table.Options{})
			if err != nil {
				t.Fatal(err)
			}
			cols, rows, err := readAll(t, r)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(cols, "|"); got != c.cols {
				t.Errorf("columns %q, want %q", got, c.cols)
			}
			var rs []string
			for _, r := range rows {
				rs = append(rs, strings.Join(r, ","))
			}
			if got := strings.Join(rs, ";"); got != c.rows {
				t.Errorf("rows %q, want %q", got, c.rows)
			}
		})
	}
}

func TestCSVErrors(t *testing.T) {
	cases := []struct {
		name, in string
		opts     table.Options
		want     string
		is       error
	}{
		{"empty", "", table.Options{}, "empty file", table.ErrEmpty},
		{"only newline", "\n", table.Options{}, "empty file", table.ErrEmpty},
		{"ragged", "a,b\n1,2\n1,2,3\n", table.Options{}, "line 3: wrong number of fields: 3, the header has 2", table.ErrRagged},
		{"huge line", "a\n" + strings.Repeat("9", 5000) + "\n", table.Options{MaxLineBytes: 1024}, "line 2: record longer than the line limit", table.ErrLineTooBig},
		{"unclosed quote", "a,b\n\"x,1\n", table.Options{}, "quoted field not closed", nil},
		{"too many columns", "a,b,c\n", table.Options{MaxColumns: 2}, "more than the limit of 2", nil},
		{"duplicate header", "a,a\n1,2\n", table.Options{}, "duplicate column name", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := table.NewReader(strings.NewReader(c.in), "csv", c.opts)
			if err == nil {
				_, _, err = readAll(t, r)
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("error %v is not %v", err, c.is)
			}
		})
	}
}

func TestJSONL(t *testing.T) {
	in := `{"x": 1.5, "y": "a", "ok": true}
{"x": null, "y": "b"}

{"y": "c", "x": -2e3, "ok": false}
`
	r, err := table.NewReader(strings.NewReader(in), "jsonl", table.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cols, rows, err := readAll(t, r)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cols, ",") != "x,y,ok" || len(rows) != 3 {
		t.Fatalf("cols %v rows %v", cols, rows)
	}
	if got := strings.Join(rows[1], ","); got != "<null>,b,<null>" {
		t.Errorf("row 2 %q", got)
	}
	if got := strings.Join(rows[2], ","); got != "-2e3,c,false" {
		t.Errorf("row 3 %q", got)
	}
	for name, bad := range map[string]string{
		"extra key":   "{\"a\":1}\n{\"a\":2,\"b\":3}\n",
		"nested":      "{\"a\":{\"b\":1}}\n",
		"not object":  "[1,2]\n",
		"broken json": "{\"a\":1}\n{\"a\":\n",
		"trailing":    "{\"a\":1} {\"a\":2}\n",
	} {
		t.Run(name, func(t *testing.T) {
			r, err := table.NewReader(strings.NewReader(bad), "jsonl", table.Options{})
			if err == nil {
				_, _, err = readAll(t, r)
			}
			if err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestOpenGzipAndDigest(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "d.csv.gz")
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	io.WriteString(zw, "a,b\n1,2\n3,4\n")
	zw.Close()
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := table.Open(p, table.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, rows, err := readAll(t, f)
	if err != nil || len(rows) != 2 {
		t.Fatalf("rows %v err %v", rows, err)
	}
	if d := f.Digest(); !strings.HasPrefix(d, "sha256:") || len(d) != 71 {
		t.Errorf("digest %q", d)
	}
}

type pqRow struct {
	X     float64 `parquet:"x"`
	Label int64   `parquet:"label"`
	Name  string  `parquet:"name,optional"`
}

func TestParquet(t *testing.T) {
	p := filepath.Join(t.TempDir(), "d.parquet")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w := parquet.NewGenericWriter[pqRow](f)
	in := []pqRow{{1.5, 0, "a"}, {-2, 1, ""}, {3.25, 2, "c"}}
	if _, err := w.Write(in); err != nil {
		t.Fatal(err)
	}
	w.Close()
	f.Close()
	tf, err := table.Open(p, table.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tf.Close()
	cols, rows, err := readAll(t, tf)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || len(cols) != 3 {
		t.Fatalf("cols %v rows %v", cols, rows)
	}
	idx := map[string]int{}
	for i, c := range cols {
		idx[c] = i
	}
	if rows[2][idx["x"]] != "3.25" || rows[1][idx["label"]] != "1" || rows[0][idx["name"]] != "a" {
		t.Errorf("rows %v (cols %v)", rows, cols)
	}
}

func TestParquetCorrupt(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.parquet")
	os.WriteFile(p, []byte("PAR1 this is not a parquet file PAR1"), 0o600)
	if f, err := table.Open(p, table.Options{}); err == nil {
		f.Close()
		t.Fatal("corrupt parquet opened")
	}
}
