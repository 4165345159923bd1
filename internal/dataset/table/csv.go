package table

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

type csvReader struct {
	lr     *lineReader
	delim  byte
	cols   []string
	fields []Field
	rec    []byte // a record spanning lines
	max    int
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

func newCSV(r io.Reader, opts Options) (*csvReader, error) {
	c := &csvReader{lr: newLineReader(r, opts.MaxLineBytes), max: opts.MaxLineBytes}
	header, err := c.record()
	if errors.Is(err, io.EOF) {
		return nil, ErrEmpty
	}
	if err != nil {
		return nil, err
	}
	header = bytes.TrimPrefix(header, utf8BOM)
	if len(bytes.TrimSpace(header)) == 0 {
		return nil, ErrEmpty
	}
	c.delim = opts.Delimiter
	if c.delim == 0 {
		c.delim = sniff(header)
	}
	hf, err := c.split(header, 1)
	if err != nil {
		return nil, err
	}
	if len(hf) > opts.MaxColumns {
		return nil, &RowError{Line: 1, Err: fmt.Errorf("%d columns, more than the limit of %d", len(hf), opts.MaxColumns)}
	}
	seen := map[string]bool{}
	for i, f := range hf {
		name := string(bytes.TrimSpace(f.B))
		if name == "" {
			name = fmt.Sprintf("column_%d", i+1)
		}
		if seen[name] {
			return nil, &RowError{Line: 1, Err: fmt.Errorf("duplicate column name %q", name)}
		}
		seen[name] = true
		c.cols = append(c.cols, name)
	}
	return c, nil
}

// sniff picks the delimiter that occurs most often outside quotes in the header.
func sniff(header []byte) byte {
	best, bestN := byte(','), 0
	for _, d := range []byte{',', ';', '\t', '|'} {
		n, inQ := 0, false
		for _, ch := range header {
			switch {
			case ch == '"':
				inQ = !inQ
			case ch == d && !inQ:
				n++
			}
		}
		if n > bestN {
			best, bestN = d, n
		}
	}
	return best
}

func (c *csvReader) Columns() []string { return c.cols }

// record returns one logical record: a line, or several when a quoted field spans newlines.
func (c *csvReader) record() ([]byte, error) {
	b, err := c.lr.next()
	if err != nil {
		return nil, err
	}
	if bytes.Count(b, []byte{'"'})%2 == 0 {
		return b, nil
	}
	start := c.lr.line
	c.rec = append(c.rec[:0], b...)
	for {
		c.rec = append(c.rec, '\n')
		nb, err := c.lr.next()
		if errors.Is(err, io.EOF) {
			return nil, &RowError{Line: start, Err: errors.New("quoted field not closed before end of file")}
		}
		if err != nil {
			return nil, err
		}
		c.rec = append(c.rec, nb...)
		if len(c.rec) > c.max {
			return nil, &RowError{Line: start, Err: ErrLineTooBig}
		}
		if bytes.Count(c.rec, []byte{'"'})%2 == 0 {
			return c.rec, nil
		}
	}
}

func (c *csvReader) Next() ([]Field, error) {
	for {
		b, err := c.record()
		if err != nil {
			return nil, err
		}
		if len(b) == 0 {
			continue // blank lines carry no record
		}
		f, err := c.split(b, c.lr.line)
		if err != nil {
			return nil, err
		}
		if len(f) != len(c.cols) {
			return nil, &RowError{Line: c.lr.line, Err: fmt.Errorf("%w: %d, the header has %d", ErrRagged, len(f), len(c.cols))}
		}
		return f, nil
	}
}

// split cuts a record into fields; quoted fields are unescaped into a scratch buffer.
func (c *csvReader) split(b []byte, line int64) ([]Field, error) {
	c.fields = c.fields[:0]
	if bytes.IndexByte(b, '"') < 0 {
		for {
			i := bytes.IndexByte(b, c.delim)
			if i < 0 {
				c.fields = append(c.fields, Field{B: b, Null: len(b) == 0})
				return c.fields, nil
			}
			c.fields = append(c.fields, Field{B: b[:i], Null: i == 0})
			b = b[i+1:]
		}
	}
	scratch := make([]byte, 0, len(b))
	for {
		if len(b) > 0 && b[0] == '"' {
			start := len(scratch)
			i := 1
			for {
				if i >= len(b) {
					return nil, &RowError{Line: line, Err: errors.New("quoted field not closed")}
				}
				if b[i] == '"' {
					if i+1 < len(b) && b[i+1] == '"' {
						scratch = append(scratch, '"')
						i += 2
						continue
					}
					break
				}
				scratch = append(scratch, b[i])
				i++
			}
			c.fields = append(c.fields, Field{B: scratch[start:len(scratch):len(scratch)]})
			b = b[i+1:]
			if len(b) == 0 {
				return c.fields, nil
			}
			if b[0] != c.delim {
				return nil, &RowError{Line: line, Err: fmt.Errorf("unexpected %q after closing quote", b[0])}
			}
			b = b[1:]
			continue
		}
		i := bytes.IndexByte(b, c.delim)
		if i < 0 {
			c.fields = append(c.fields, Field{B: b, Null: len(b) == 0})
			return c.fields, nil
		}
		c.fields = append(c.fields, Field{B: b[:i], Null: i == 0})
		b = b[i+1:]
	}
}
