package protocol

import "math"

// Classes reads the predicted class of each row of a response: integer outputs are the class,
// score vectors give their argmax, a single float score gives class 0 (regression: one group).
// KServe v2 reads the first integer output, else the first output; TF Serving and MLflow read
// "predictions" (or "outputs"), or a bare list. OpenAI and raw responses give no classes.
func (p *Parser) Classes(body []byte, scratch *Request, dst []int) ([]int, error) {
	dst = dst[:0]
	scratch.Reset()
	s := &scanner{b: body, maxDepth: p.limits.MaxDepth, maxValues: p.limits.MaxValues, nonFinite: true}
	var op opaqueSum
	switch p.kind {
	case KServeV2:
		var best block
		bestInt, have := false, false
		err := s.object(func(key []byte) error {
			if string(key) != "outputs" {
				return s.skip()
			}
			return s.array(func(int) error {
				var dtype []byte
				start := len(scratch.Vals)
				t, err := kserveOutput(s, scratch, &op, &dtype)
				if err != nil {
					return err
				}
				isInt := len(dtype) > 0 && (dtype[0] == 'I' || dtype[0] == 'U')
				if !have || (isInt && !bestInt) {
					best, bestInt, have = t, isInt, true
				} else {
					scratch.Vals = scratch.Vals[:start]
				}
				return nil
			})
		})
		if err != nil || !have {
			return dst, err
		}
		return classesOf(scratch.Vals[best.start:best.end], best.rows, best.width, dst), nil
	case TFServing, MLflow:
		var b block
		var err error
		if s.peek() == '[' {
			b, err = rowsOf(s, scratch, &op)
		} else {
			err = s.object(func(key []byte) error {
				if string(key) != "predictions" && string(key) != "outputs" {
					return s.skip()
				}
				if s.peek() != '[' {
					return s.skip()
				}
				var err error
				b, err = rowsOf(s, scratch, &op)
				return err
			})
		}
		if err != nil || b.width < 0 {
			return dst, err
		}
		return classesOf(scratch.Vals[b.start:b.end], b.rows, b.width, dst), nil
	}
	return dst, nil
}

func kserveOutput(s *scanner, scratch *Request, op *opaqueSum, dtype *[]byte) (block, error) {
	var shape []int
	b := block{start: len(scratch.Vals)}
	err := s.object(func(key []byte) error {
		switch string(key) {
		case "datatype":
			v, err := s.str()
			*dtype = append((*dtype)[:0], v...)
			return err
		case "shape":
			return s.array(func(int) error {
				f, err := s.number()
				shape = append(shape, int(f))
				return err
			})
		case "data":
			var err error
			scratch.Vals, err = s.flatten(scratch.Vals, op)
			return err
		}
		return s.skip()
	})
	b.end = len(scratch.Vals)
	n := b.end - b.start
	switch {
	case len(shape) >= 2 && shape[0] > 0 && n%shape[0] == 0:
		b.rows, b.width = shape[0], n/shape[0]
	default:
		// A 1-D output is one value per row (Triton classifiers return [batch]).
		b.rows, b.width = n, 1
	}
	return b, err
}

func classesOf(vals []float64, rows, width int, dst []int) []int {
	if width <= 0 || rows*width > len(vals) {
		return dst
	}
	for r := 0; r < rows; r++ {
		row := vals[r*width : (r+1)*width]
		if width == 1 {
			v := row[0]
			if v == math.Trunc(v) && v >= 0 && v < 1<<20 {
				dst = append(dst, int(v))
			} else {
				dst = append(dst, 0)
			}
			continue
		}
		best := 0
		for j, v := range row {
			if v > row[best] {
				best = j
			}
		}
		dst = append(dst, best)
	}
	return dst
}
