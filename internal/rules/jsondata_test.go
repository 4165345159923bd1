package rules

// Internal test: decodeData is unexported and must agree with encoding/json exactly.

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

func FuzzDecodeData(f *testing.F) {
	for _, s := range []string{
		`{"endpoint":"fraud-v3","client":"c-1","status":200,"latency_ms":12.5}`,
		`{"a":[1,2,{"b":null}],"c":true,"d":false,"e":"\u00e9\ud83d\ude00\n\"","f":-0.5e-3}`,
		`null`, ``, `{}`, `{"a":1,"a":2}`, `{"x":"\ud800"}`, `{"x":"` + "\xff" + `"}`, `[1]`, `{"a":01}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		got, err := decodeData(b, 64)
		var want map[string]any
		werr := json.Unmarshal(b, &want)
		if tb := bytes.Trim(b, " \t\r\n"); len(tb) == 0 || string(tb) == "null" {
			if err != nil || len(got) != 0 {
				t.Fatalf("empty data: %v %v", got, err)
			}
			return
		}
		if (err == nil) != (werr == nil) {
			if err == errJSONDepth {
				return // encoding/json allows 10000 levels; data is capped lower on purpose
			}
			t.Fatalf("decodeData err %v, encoding/json err %v for %q", err, werr, b)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("decodeData %#v, encoding/json %#v for %q", got, want, b)
		}
	})
}

func BenchmarkDecodeData(b *testing.B) {
	d := []byte(`{"endpoint":"fraud-api","client":"client-042","status":200,"latency_ms":12.5}`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := decodeData(d, 64); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeDataStdlib(b *testing.B) {
	d := []byte(`{"endpoint":"fraud-api","client":"client-042","status":200,"latency_ms":12.5}`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		var m map[string]any
		if err := json.Unmarshal(d, &m); err != nil {
			b.Fatal(err)
		}
	}
}
