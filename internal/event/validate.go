package event

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
)

// validateData checks the documented fields of a type's data. It decodes only the top level
// (and the few nested shapes the vocabulary fixes), so extra fields cost nothing.
// It returns the assets the data names.
func validateData(spec *TypeSpec, data json.RawMessage) ([]Asset, *Error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || string(data) == "null" {
		return nil, &Error{Field: "data", Reason: fmt.Sprintf("is required for %s", spec.Type)}
	}
	if data[0] != '{' {
		return nil, &Error{Field: "data", Reason: "must be a JSON object"}
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, &Error{Field: "data", Reason: "invalid JSON: " + jsonReason(err)}
	}
	var assets []Asset
	for _, f := range spec.Fields {
		v, ok := top[f.Name]
		if !ok || (f.Kind != Any && string(v) == "null") {
			if f.Required {
				return nil, &Error{Field: "data." + f.Name, Reason: fmt.Sprintf("is required for %s and must be %s", spec.Type, f.Kind)}
			}
			continue
		}
		if reason := checkKind(f, v); reason != "" {
			return nil, &Error{Field: "data." + f.Name, Reason: reason}
		}
		if f.Asset != "" {
			var name string
			if json.Unmarshal(v, &name) == nil && name != "" {
				assets = append(assets, Asset{Kind: f.Asset, Name: name})
			}
		}
	}
	return assets, nil
}

func checkKind(f Field, v json.RawMessage) string {
	must := "must be " + f.Kind.String()
	switch f.Kind {
	case Any:
		return ""
	case String:
		var s string
		if v[0] != '"' || json.Unmarshal(v, &s) != nil {
			return must
		}
		max := f.MaxLen
		if max == 0 {
			max = maxStringLen
		}
		if len(s) > max {
			return fmt.Sprintf("longer than %d bytes", max)
		}
		if len(f.Enum) > 0 && !contains(f.Enum, s) {
			return fmt.Sprintf("%q is not one of %s", s, strings.Join(f.Enum, ", "))
		}
	case Number, Integer:
		var n float64
		if !isNumberStart(v[0]) || json.Unmarshal(v, &n) != nil || math.IsInf(n, 0) {
			return must
		}
		if f.Kind == Integer && n != math.Trunc(n) {
			return must
		}
	case Bool:
		if s := string(v); s != "true" && s != "false" {
			return must
		}
	case Object:
		if v[0] != '{' {
			return must
		}
	case Array, StringArray, NumberArray, SchemaArray:
		if v[0] != '[' {
			return must
		}
		var items []json.RawMessage
		if err := json.Unmarshal(v, &items); err != nil {
			return must
		}
		if f.MaxLen > 0 && len(items) > f.MaxLen {
			return fmt.Sprintf("has %d elements, more than the limit of %d", len(items), f.MaxLen)
		}
		for i, it := range items {
			if r := checkItem(f.Kind, it); r != "" {
				return fmt.Sprintf("element %d: %s", i, r)
			}
		}
	}
	return ""
}

func checkItem(k Kind, it json.RawMessage) string {
	switch k {
	case StringArray:
		if it[0] != '"' {
			return "must be a string"
		}
	case NumberArray:
		if !isNumberStart(it[0]) {
			return "must be a number"
		}
	case SchemaArray:
		var col struct {
			Name *string `json:"name"`
			Type *string `json:"type"`
		}
		if it[0] != '{' || json.Unmarshal(it, &col) != nil || col.Name == nil || col.Type == nil || *col.Name == "" {
			return `must be an object with string "name" and "type"`
		}
	}
	return ""
}

func isNumberStart(c byte) bool { return c == '-' || (c >= '0' && c <= '9') }

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}
