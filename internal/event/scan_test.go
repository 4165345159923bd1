package event

import (
	"encoding/json"
	"math"
	"testing"
	"unicode/utf8"
)

// FuzzScannerMatchesEncodingJSON: the ingestion scanner accepts exactly what encoding/json
// accepts (on valid UTF-8, which Decode checks first), and finds the same string values.
func FuzzScannerMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{`{}`, `[]`, `{"a":[1,2,{"b":null}]}`, `"x\u00e9\n"`, `-0.5e+10`, `01`, `1.`, `{"a" 1}`, `[1,]`, `"\ud800"`, `true`, `nul`, "\"\x01\"", `{"a":1}x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := &scanner{b: b, maxDepth: math.MaxInt32}
		_, _, err := s.value()
		if err == nil {
			s.ws()
			if s.i != len(b) {
				err = s.fail("trailing data")
			}
		}
		s2 := &scanner{b: b}
		s2.ws()
		lead := s2.i
		if !utf8.Valid(b) {
			return // Decode rejects invalid UTF-8 before scanning; encoding/json replaces it
		}
		if valid := json.Valid(b); (err == nil) != valid {
			t.Fatalf("scanner err=%v, json.Valid=%v for %q", err, valid, b)
		}
		if err == nil && lead < len(b) && b[lead] == '"' {
			s3 := &scanner{b: b[lead:]}
			raw, esc, _ := s3.str()
			got, ok := unquote(raw, esc)
			var want string
			if json.Unmarshal(b, &want) == nil && (!ok || got != want) {
				t.Fatalf("string value %q, encoding/json %q", got, want)
			}
		}
	})
}
