package table

import (
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strconv"

	"github.com/parquet-go/parquet-go"
)

// parquetReader streams the rows of a flat Parquet file, one row group at a time.
type parquetReader struct {
	file   *parquet.File
	cols   []string
	groups []parquet.RowGroup
	g      int
	rows   parquet.Rows
	buf    []parquet.Row
	n, i   int
	row    int64
	fields []Field
	text   [][]byte
}

func newParquet(f *os.File, sum hash.Hash) (r *parquetReader, err error) {
	defer func() {
		if p := recover(); p != nil {
			r, err = nil, fmt.Errorf("malformed parquet file: %v", p)
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() == 0 {
		return nil, ErrEmpty
	}
	if _, err := io.Copy(sum, f); err != nil {
		return nil, err
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("parquet: %w", err)
	}
	r = &parquetReader{file: pf, groups: pf.RowGroups(), buf: make([]parquet.Row, 256)}
	for _, fl := range pf.Schema().Fields() {
		if !fl.Leaf() {
			return nil, fmt.Errorf("parquet column %q is nested; only flat schemas are supported", fl.Name())
		}
		r.cols = append(r.cols, fl.Name())
	}
	if len(r.cols) == 0 {
		return nil, ErrEmpty
	}
	r.fields = make([]Field, len(r.cols))
	r.text = make([][]byte, len(r.cols))
	return r, nil
}

func (r *parquetReader) Columns() []string { return r.cols }

func (r *parquetReader) Next() (fs []Field, err error) {
	defer func() {
		if p := recover(); p != nil {
			fs, err = nil, &RowError{Line: r.row + 1, Err: fmt.Errorf("malformed parquet file: %v", p)}
		}
	}()
	for r.i >= r.n {
		if r.rows == nil {
			if r.g >= len(r.groups) {
				return nil, io.EOF
			}
			r.rows = r.groups[r.g].Rows()
			r.g++
		}
		n, err := r.rows.ReadRows(r.buf)
		r.n, r.i = n, 0
		if errors.Is(err, io.EOF) {
			r.rows.Close()
			r.rows = nil
		} else if err != nil {
			return nil, &RowError{Line: r.row + 1, Err: err}
		}
	}
	row := r.buf[r.i]
	r.i++
	r.row++
	for c := range r.fields {
		r.fields[c] = Field{Null: true}
	}
	for _, v := range row {
		c := v.Column()
		if c < 0 || c >= len(r.fields) || v.IsNull() {
			continue
		}
		t := r.text[c][:0]
		switch v.Kind() {
		case parquet.Boolean:
			t = strconv.AppendBool(t, v.Boolean())
		case parquet.Int32:
			t = strconv.AppendInt(t, int64(v.Int32()), 10)
		case parquet.Int64:
			t = strconv.AppendInt(t, v.Int64(), 10)
		case parquet.Float:
			t = strconv.AppendFloat(t, float64(v.Float()), 'g', -1, 32)
		case parquet.Double:
			t = strconv.AppendFloat(t, v.Double(), 'g', -1, 64)
		default:
			t = append(t, v.ByteArray()...)
		}
		r.text[c] = t
		r.fields[c] = Field{B: t}
	}
	return r.fields, nil
}
