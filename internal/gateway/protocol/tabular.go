package protocol

import (
	"bytes"
	"math"
)

// parseTF reads a TF Serving REST predict request: {"instances": [...]} (row format) or
// {"inputs": ...} (columnar: a list, or an object of named tensors). {"b64": ...} values are
// hashed; NaN and Infinity tokens are accepted as TF Serving does.
func parseTF(s *scanner, dst *Request, op *opaqueSum) error {
	var blocks []block
	found := false
	err := s.object(func(key []byte) error {
		switch string(key) {
		case "instances":
			found = true
			b, err := rowsOf(s, dst, op)
			blocks = append(blocks[:0], b)
			return err
		case "inputs":
			found = true
			return columnar(s, dst, op, &blocks)
		}
		return s.skip()
	})
	if err != nil {
		return err
	}
	if err := s.end(); err != nil {
		return err
	}
	if !found {
		return ErrUnsupported
	}
	finish(dst, blocks)
	return nil
}

// columnar reads TF Serving's and MLflow's "inputs": a list of rows, an object of named tensors
// (each a list over the batch), or a single value.
func columnar(s *scanner, dst *Request, op *opaqueSum, blocks *[]block) error {
	switch s.peek() {
	case '[':
		b, err := rowsOf(s, dst, op)
		*blocks = append((*blocks)[:0], b)
		return err
	case '{':
		*blocks = (*blocks)[:0]
		return s.object(func([]byte) error {
			if s.peek() != '[' {
				start := len(dst.Vals)
				var err error
				dst.Vals, err = s.flatten(dst.Vals, op)
				*blocks = append(*blocks, block{start: start, end: len(dst.Vals), rows: 1, width: len(dst.Vals) - start})
				return err
			}
			b, err := rowsOf(s, dst, op)
			*blocks = append(*blocks, b)
			return err
		})
	default:
		start := len(dst.Vals)
		var err error
		dst.Vals, err = s.flatten(dst.Vals, op)
		*blocks = append((*blocks)[:0], block{start: start, end: len(dst.Vals), rows: 1, width: len(dst.Vals) - start})
		return err
	}
}

// parseMLflow reads an MLflow /invocations JSON body: dataframe_split ({columns, data}),
// dataframe_records ([{column: value}]), instances or inputs.
func parseMLflow(s *scanner, dst *Request, op *opaqueSum) error {
	var blocks []block
	found := false
	err := s.object(func(key []byte) error {
		switch string(key) {
		case "dataframe_split":
			found = true
			return s.object(func(k []byte) error {
				if string(k) != "data" {
					return s.skip()
				}
				b, err := rowsOf(s, dst, op)
				blocks = append(blocks[:0], b)
				return err
			})
		case "dataframe_records", "instances":
			found = true
			b, err := rowsOf(s, dst, op)
			blocks = append(blocks[:0], b)
			return err
		case "inputs":
			found = true
			return columnar(s, dst, op, &blocks)
		}
		return s.skip()
	})
	if err != nil {
		return err
	}
	if err := s.end(); err != nil {
		return err
	}
	if !found {
		return ErrUnsupported
	}
	finish(dst, blocks)
	return nil
}

// parseCSV reads MLflow's text/csv input: an optional header line, then one row per line.
// Fields that are not numbers count as NaN and are hashed.
func parseCSV(body []byte, l Limits, dst *Request, op *opaqueSum) error {
	width := -2
	first := true
	for len(body) > 0 {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		line = bytes.TrimRight(line, "\r")
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		start := len(dst.Vals)
		numeric := 0
		saved := *op
		for field := range bytes.SplitSeq(line, []byte{','}) {
			field = bytes.Trim(bytes.TrimSpace(field), `"`)
			s := scanner{b: field}
			f, err := s.number()
			if err != nil || s.i != len(field) {
				op.add(field)
				f = math.NaN()
			} else {
				numeric++
			}
			if len(dst.Vals) >= l.MaxValues {
				return &SyntaxError{Offset: 0, Msg: "too many values"}
			}
			dst.Vals = append(dst.Vals, f)
		}
		if first && numeric == 0 {
			dst.Vals = dst.Vals[:start] // header
			*op = saved
			first = false
			continue
		}
		first = false
		w := len(dst.Vals) - start
		switch {
		case width == -2:
			width = w
		case width != w:
			width = -1
		}
		dst.Rows++
	}
	if width == -2 {
		width = 0
	}
	dst.Width = width
	return nil
}
