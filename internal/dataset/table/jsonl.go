package table

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// jsonlReader reads one flat JSON object per line. The first object's keys, in order, are the
// columns; later objects may omit keys (null) but may not add new ones.
type jsonlReader struct {
	lr     *lineReader
	cols   []string
	index  map[string]int
	fields []Field
	buf    []byte
	first  [][2][]byte
	pend   bool
}

func newJSONL(r io.Reader, opts Options) (*jsonlReader, error) {
	j := &jsonlReader{lr: newLineReader(r, opts.MaxLineBytes), index: map[string]int{}}
	for {
		b, err := j.lr.next()
		if errors.Is(err, io.EOF) {
			return nil, ErrEmpty
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		kv, err := parseObject(b)
		if err != nil {
			return nil, &RowError{Line: j.lr.line, Err: err}
		}
		if len(kv) == 0 {
			return nil, &RowError{Line: j.lr.line, Err: errors.New("the first record has no keys")}
		}
		if len(kv) > opts.MaxColumns {
			return nil, &RowError{Line: j.lr.line, Err: fmt.Errorf("%d keys, more than the limit of %d", len(kv), opts.MaxColumns)}
		}
		for _, p := range kv {
			name := string(p[0])
			if _, dup := j.index[name]; dup {
				return nil, &RowError{Line: j.lr.line, Err: fmt.Errorf("duplicate key %q", name)}
			}
			j.index[name] = len(j.cols)
			j.cols = append(j.cols, name)
		}
		j.first, j.pend = kv, true
		return j, nil
	}
}

func (j *jsonlReader) Columns() []string { return j.cols }

func (j *jsonlReader) Next() ([]Field, error) {
	var kv [][2][]byte
	if j.pend {
		kv, j.pend = j.first, false
	} else {
		for {
			b, err := j.lr.next()
			if err != nil {
				return nil, err
			}
			if len(bytes.TrimSpace(b)) == 0 {
				continue
			}
			kv, err = parseObject(b)
			if err != nil {
				return nil, &RowError{Line: j.lr.line, Err: err}
			}
			break
		}
	}
	if cap(j.fields) < len(j.cols) {
		j.fields = make([]Field, len(j.cols))
	}
	j.fields = j.fields[:len(j.cols)]
	for i := range j.fields {
		j.fields[i] = Field{Null: true}
	}
	for _, p := range kv {
		i, ok := j.index[string(p[0])]
		if !ok {
			return nil, &RowError{Line: j.lr.line, Err: fmt.Errorf("%w: key %q is not among the first record's keys", ErrRagged, p[0])}
		}
		if p[1] != nil {
			j.fields[i] = Field{B: p[1]}
		}
	}
	return j.fields, nil
}

// parseObject decodes one flat JSON object into key / text pairs; a nil text is null. Nested
// objects and arrays are refused.
func parseObject(b []byte) ([][2][]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	t, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		return nil, errors.New("each line must be a JSON object")
	}
	var out [][2][]byte
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("invalid JSON: %v", err)
		}
		key, _ := kt.(string)
		vt, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("invalid JSON: %v", err)
		}
		var val []byte
		switch v := vt.(type) {
		case nil:
		case string:
			val = []byte(v)
		case json.Number:
			val = []byte(v.String())
		case bool:
			val = []byte(strconv.FormatBool(v))
		case json.Delim:
			return nil, fmt.Errorf("key %q: nested objects and arrays are not supported", key)
		}
		out = append(out, [2][]byte{[]byte(key), val})
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	if dec.More() {
		return nil, errors.New("trailing data after the JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after the JSON object")
	}
	return out, nil
}
