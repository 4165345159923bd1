package protocol

// parseKServe reads an Open Inference Protocol v2 request: {"inputs": [{"name", "shape",
// "datatype", "data", "parameters"}], ...}. Data may be flat or nested; with the binary-tensor
// extension a tensor has parameters.binary_data_size and no data, and its bytes were hashed.
func parseKServe(s *scanner, dst *Request, op *opaqueSum) error {
	var blocks []block
	found := false
	err := s.object(func(key []byte) error {
		if string(key) != "inputs" {
			return s.skip()
		}
		found = true
		return s.array(func(int) error {
			b, err := kserveTensor(s, dst, op)
			if err == nil && b.rows > 0 {
				blocks = append(blocks, b)
			}
			return err
		})
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

func kserveTensor(s *scanner, dst *Request, op *opaqueSum) (block, error) {
	var (
		name    []byte
		shape   []int
		hasData bool
		shapeOK = true
		strs    int // string elements (BYTES tensors), hashed
	)
	b := block{start: len(dst.Vals)}
	err := s.object(func(key []byte) error {
		switch string(key) {
		case "name":
			if s.peek() != '"' {
				return s.fail("input name must be a string")
			}
			v, err := s.str()
			name = append(name[:0], v...)
			return err
		case "shape":
			shape = shape[:0]
			return s.array(func(int) error {
				f, err := s.number()
				if err != nil {
					return err
				}
				if f != float64(int(f)) || f < 0 || f > 1<<31 {
					shapeOK = false
				}
				shape = append(shape, int(f))
				return nil
			})
		case "data":
			hasData = true
			items := op.items
			defer func() { strs = op.items - items }()
			if s.peek() != '[' {
				return s.fail("input data must be an array")
			}
			var err error
			dst.Vals, err = s.flatten(dst.Vals, op)
			return err
		default:
			return s.skip()
		}
	})
	if err != nil {
		return b, err
	}
	b.end = len(dst.Vals)
	n := b.end - b.start
	if !hasData || n == 0 && strs > 0 {
		return block{}, nil // binary tensor: its bytes were hashed
	}
	if !shapeOK {
		return b, &ShapeError{Input: string(name), Shape: shape, Values: n}
	}
	if len(shape) > 0 {
		prod := 1
		for _, d := range shape {
			prod *= d
			if prod > s.maxValues {
				return b, &ShapeError{Input: string(name), Shape: shape, Values: n}
			}
		}
		if prod != n+strs {
			return b, &ShapeError{Input: string(name), Shape: append([]int(nil), shape...), Values: n + strs}
		}
	}
	switch {
	case len(shape) >= 2 && shape[0] > 0:
		b.rows, b.width = shape[0], n/shape[0]
	case n == 0:
		b.rows, b.width = 0, 0
	default:
		b.rows, b.width = 1, n
	}
	return b, nil
}
