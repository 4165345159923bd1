package dataset

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/pipewarden/pipewarden/internal/dataset/table"
)

// Limits of Records.
const (
	MaxRecordColumns = table.DefaultMaxColumns
	maxRecordsBytes  = 64 << 20
)

// records is a RowSource over rows already in memory.
type records struct {
	cols []string
	rows [][]table.Field
	i    int
}

func (r *records) Columns() []string { return r.cols }

func (r *records) Next() ([]table.Field, error) {
	if r.i >= len(r.rows) {
		return nil, io.EOF
	}
	r.i++
	return r.rows[r.i-1], nil
}

// Records is a RowSource over inline rows: a JSON array of flat objects, as the records field of
// a pipewarden.data.batch event carries them. The columns are every key in first-seen order; a
// key missing from a row is null. Values must be strings, numbers, booleans or null; nested
// objects and arrays are refused, naming the record and key.
func Records(raw []byte) (RowSource, error) {
	if len(raw) > maxRecordsBytes {
		return nil, fmt.Errorf("records: %d bytes, more than the limit of %d", len(raw), maxRecordsBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('[') {
		return nil, errors.New("records: want a JSON array of objects")
	}
	r := &records{}
	index := map[string]int{}
	for dec.More() {
		n := len(r.rows)
		if t, err := dec.Token(); err != nil || t != json.Delim('{') {
			return nil, fmt.Errorf("records[%d]: want a JSON object", n)
		}
		row := make([]table.Field, len(r.cols))
		for i := range row {
			row[i].Null = true
		}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, fmt.Errorf("records[%d]: invalid JSON: %v", n, err)
			}
			key, _ := kt.(string)
			vt, err := dec.Token()
			if err != nil {
				return nil, fmt.Errorf("records[%d]: invalid JSON: %v", n, err)
			}
			var f table.Field
			switch v := vt.(type) {
			case nil:
				f.Null = true
			case string:
				f.B = []byte(v)
			case json.Number:
				f.B = []byte(v.String())
			case bool:
				f.B = []byte(strconv.FormatBool(v))
			default:
				return nil, fmt.Errorf("records[%d]: key %q: nested objects and arrays are not supported", n, key)
			}
			c, ok := index[key]
			if !ok {
				if len(r.cols) >= MaxRecordColumns {
					return nil, fmt.Errorf("records[%d]: more than %d distinct keys", n, MaxRecordColumns)
				}
				c = len(r.cols)
				index[key] = c
				r.cols = append(r.cols, key)
				row = append(row, table.Field{Null: true})
			}
			row[c] = f
		}
		if _, err := dec.Token(); err != nil {
			return nil, fmt.Errorf("records[%d]: invalid JSON: %v", n, err)
		}
		r.rows = append(r.rows, row)
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("records: invalid JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("records: trailing data after the array")
	}
	if len(r.rows) == 0 {
		return nil, errors.New("records: empty array")
	}
	if len(r.cols) == 0 {
		return nil, errors.New("records: no record has any key")
	}
	// Rows read before a key first appeared are shorter than the header: pad them with nulls.
	for i, row := range r.rows {
		for len(row) < len(r.cols) {
			row = append(row, table.Field{Null: true})
		}
		r.rows[i] = row
	}
	return r, nil
}
