package event

// Members calls fn for each member of the JSON object in b, in order, with the member's raw
// key (escaped reports backslash escapes in it; see Unquote) and the raw bytes of its value. It
// reads b once with the ingestion scanner, validating syntax (not UTF-8) to a depth of 64, and
// fails on anything but one object, or on the first error fn returns.
func Members(b []byte, fn func(key []byte, escaped bool, value []byte) error) error {
	s := &scanner{b: b, maxDepth: 64}
	s.ws()
	if s.peek() != '{' {
		return s.fail("expected a JSON object")
	}
	err := s.object(func(k []byte, esc bool) error {
		start, end, err := s.value()
		if err != nil {
			return err
		}
		return fn(k, esc, b[start:end])
	})
	if err != nil {
		return err
	}
	s.ws()
	if s.i != len(b) {
		return s.fail("unexpected data after the object")
	}
	return nil
}

// Elements calls fn with the raw bytes of each element of the JSON array in b, as Members does
// for objects.
func Elements(b []byte, fn func(value []byte) error) error {
	s := &scanner{b: b, maxDepth: 64}
	s.ws()
	if s.peek() != '[' {
		return s.fail("expected a JSON array")
	}
	err := s.array(func(int) error {
		start, end, err := s.value()
		if err != nil {
			return err
		}
		return fn(b[start:end])
	})
	if err != nil {
		return err
	}
	s.ws()
	if s.i != len(b) {
		return s.fail("unexpected data after the array")
	}
	return nil
}
