package protocol

import "unicode/utf8"

// parseOpenAI reads the lengths of an OpenAI-compatible request: chat "messages" (content as a
// string or a list of parts), or "input" / "prompt" (a string or a list). Text is counted, never
// analysed. The result is one row [messages, characters].
func parseOpenAI(s *scanner, dst *Request, _ *opaqueSum) error {
	found := false
	err := s.object(func(key []byte) error {
		switch string(key) {
		case "messages":
			found = true
			return s.array(func(int) error {
				dst.Messages++
				if s.peek() != '{' {
					return s.skip()
				}
				return s.object(func(k []byte) error {
					if string(k) != "content" {
						return s.skip()
					}
					return countText(s, dst)
				})
			})
		case "input", "prompt":
			found = true
			if s.peek() == '[' {
				return s.array(func(int) error {
					dst.Messages++
					return countText(s, dst)
				})
			}
			dst.Messages++
			return countText(s, dst)
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
	dst.Vals = append(dst.Vals, float64(dst.Messages), float64(dst.Chars))
	dst.Rows, dst.Width = 1, 2
	return nil
}

// countText adds the characters of a string, or of every string inside a value (content parts,
// token arrays count one per token).
func countText(s *scanner, dst *Request) error {
	switch s.peek() {
	case '"':
		v, err := s.str()
		dst.Chars += utf8.RuneCount(v)
		return err
	case '[':
		return s.array(func(int) error { return countText(s, dst) })
	case '{':
		return s.object(func([]byte) error { return countText(s, dst) })
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		dst.Chars++
		_, err := s.number()
		return err
	}
	return s.skip()
}
