package event

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// validateData checks the documented fields of a type's data, given the raw spans of the data
// object's members (already syntax-checked). It returns the assets the data names.
func validateData(spec *TypeSpec, b []byte, members []member) ([]Asset, *Error) {
	var assets []Asset
	for _, f := range spec.Fields {
		var v []byte
		// The last duplicate key wins, as in encoding/json.
		for i := len(members) - 1; i >= 0; i-- {
			if string(members[i].key) == f.Name {
				v = b[members[i].start:members[i].end]
				break
			}
		}
		if v == nil || (f.Kind != Any && string(v) == "null") {
			if f.Required {
				return nil, &Error{Field: "data." + f.Name, Reason: fmt.Sprintf("is required for %s and must be %s", spec.Type, f.Kind)}
			}
			continue
		}
		if reason := checkKind(f, v); reason != "" {
			return nil, &Error{Field: "data." + f.Name, Reason: reason}
		}
		if f.Asset != "" {
			if name, ok := stringValue(v); ok && name != "" {
				assets = append(assets, Asset{Kind: f.Asset, Name: name})
			}
		}
	}
	return assets, nil
}

// stringValue decodes a raw JSON string span.
func stringValue(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	s := &scanner{b: v, maxDepth: 1}
	raw, esc, err := s.str()
	if err != nil {
		return "", false
	}
	return unquote(raw, esc)
}

func checkKind(f Field, v []byte) string {
	// The message is built only for a value that breaks the rule: every field of every event
	// goes through here.
	must := func() string { return "must be " + f.Kind.String() }
	switch f.Kind {
	case Any:
		return ""
	case String:
		s, ok := stringValue(v)
		if !ok {
			return must()
		}
		max := f.MaxLen
		if max == 0 {
			max = maxStringLen
		}
		if len(s) > max {
			return fmt.Sprintf("longer than %d bytes", max)
		}
		if len(f.Enum) > 0 && !slices.Contains(f.Enum, s) {
			return fmt.Sprintf("%q is not one of %s", s, strings.Join(f.Enum, ", "))
		}
	case Number, Integer:
		if !isNumberStart(v[0]) {
			return must()
		}
		n, err := strconv.ParseFloat(string(v), 64)
		if err != nil || math.IsInf(n, 0) {
			return must()
		}
		if f.Kind == Integer && n != math.Trunc(n) {
			return must()
		}
	case Bool:
		if s := string(v); s != "true" && s != "false" {
			return must()
		}
	case Object:
		if v[0] != '{' {
			return must()
		}
	case Array, StringArray, NumberArray, SchemaArray:
		if v[0] != '[' {
			return must()
		}
		return checkArray(f, v)
	}
	return ""
}

func checkArray(f Field, v []byte) string {
	s := &scanner{b: v, maxDepth: math.MaxInt32}
	reason := ""
	n := 0
	err := s.array(func(i int) error {
		n++
		c := s.peek()
		start, end, err := s.value()
		if err != nil || reason != "" {
			return err
		}
		switch f.Kind {
		case StringArray:
			if c != '"' {
				reason = fmt.Sprintf("element %d: must be a string", i)
			}
		case NumberArray:
			if !isNumberStart(c) {
				reason = fmt.Sprintf("element %d: must be a number", i)
			}
		case SchemaArray:
			if !isSchemaColumn(v[start:end]) {
				reason = fmt.Sprintf(`element %d: must be an object with string "name" and "type"`, i)
			}
		}
		return nil
	})
	if err != nil {
		return "must be " + f.Kind.String()
	}
	if reason != "" {
		return reason
	}
	if f.MaxLen > 0 && n > f.MaxLen {
		return fmt.Sprintf("has %d elements, more than the limit of %d", n, f.MaxLen)
	}
	return ""
}

func isSchemaColumn(v []byte) bool {
	if v[0] != '{' {
		return false
	}
	s := &scanner{b: v, maxDepth: math.MaxInt32}
	var name string
	var hasName, hasType bool
	err := s.object(func(k []byte, esc bool) error {
		key, _ := unquote(k, esc)
		start, end, err := s.value()
		if err != nil {
			return err
		}
		switch key {
		case "name":
			name, hasName = stringValue(v[start:end])
		case "type":
			_, hasType = stringValue(v[start:end])
		}
		return nil
	})
	return err == nil && hasName && hasType && name != ""
}

func isNumberStart(c byte) bool { return c == '-' || (c >= '0' && c <= '9') }
