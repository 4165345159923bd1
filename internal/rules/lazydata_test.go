package rules

// Internal tests: the lazy reader of event data (eventData) and the JSON key writer
// (appendJSON) must agree exactly with decodeData and encoding/json.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
)

var dataSeeds = []string{
	`{"endpoint":"fraud-v3","client":"c-1","status":200,"latency_ms":12.5}`,
	`{"a":[1,2,{"b":null}],"c":true,"d":false,"e":"\u00e9\ud83d\ude00\n\"","f":-0.5e-3}`,
	`null`, ``, ` `, `{}`, `{"a":1,"a":2}`, `{"x":"\ud800"}`, `{"x":"` + "\xff" + `"}`, `[1]`, `{"a":01}`,
	`{"\u0061":"b","a":"c"}`, `{"a":{"b":{"c":[]}}}`, `{"a":1e400}`, `{"a":1e-400}`, `{"a":"\u2028"}`,
	`{"a":"x\\"}`, `{"a":"\u12"}`, `{"a":1,}`, `{"a" 1}`, `{"a":tru}`, `{"a":[1,]}`, `{"a":1} x`,
	`{"a":12.5,"b":-0.25,"c":1234567890123456789,"d":-7,"e":0.000001,"f":99.99999999999999999999,"g":-0}`,
	`{"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k17":17,"k2":"last"}`,
}

// FuzzEventData: scan accepts exactly what decodeData accepts, and every value read through
// the lazy reader (native, scalar, CEL, nested path, presence, whole object) equals the
// decoded one, also after the input buffer is overwritten.
func FuzzEventData(f *testing.F) {
	for _, s := range dataSeeds {
		f.Add([]byte(s))
	}
	var d eventData // reused across inputs, as engines reuse it
	d.adapter = types.DefaultTypeAdapter
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 1<<16 {
			return
		}
		want, werr := decodeData(in, maxDataDepth)
		buf := append([]byte(nil), in...)
		gerr := d.scan(buf, maxDataDepth)
		if (gerr == nil) != (werr == nil) {
			t.Fatalf("scan err %v, decodeData err %v for %q", gerr, werr, in)
		}
		if gerr != nil {
			return
		}
		d.adapter = types.DefaultTypeAdapter
		type read struct {
			native any
			cel    any
		}
		reads := map[string]read{}
		for k, v := range want {
			f := d.field(k)
			if f == nil {
				t.Fatalf("field %q not found in %q", k, in)
			}
			got, ok := d.path([]string{k})
			if !ok || !reflect.DeepEqual(got, v) {
				t.Fatalf("path %q = %#v, want %#v", k, got, v)
			}
			if sc, ok := d.scalarAt([]string{k}); ok {
				switch x := v.(type) {
				case string:
					if sc.kind != kindString || sc.s != x {
						t.Fatalf("scalar %q = %+v, want %q", k, sc, x)
					}
				case float64:
					if sc.kind != kindNumber || sc.f != x {
						t.Fatalf("scalar %q = %+v, want %v", k, sc, x)
					}
				}
			}
			if x, isNum := v.(float64); isNum && d.field(k) == f {
				// Comparisons decided on the bounds of an unparsed number agree with the value.
				for _, lit := range []float64{x, x - 0.5, x + 0.5, math.Floor(x), math.Ceil(x), x + 1, x - 1, 0} {
					for _, op := range []string{operators.Less, operators.LessEquals, operators.Greater, operators.GreaterEquals} {
						f.numOK = false
						got, ok := d.compareNumber(k, op, lit)
						if want := compareNum(op, x, lit); !ok || got != want {
							t.Fatalf("%v %s %v: %v, want %v", x, op, lit, got, want)
						}
					}
				}
			}
			if d.has([]string{k}) != yes {
				t.Fatalf("has(%q) is not yes", k)
			}
			if m, ok := v.(map[string]any); ok {
				for k2, v2 := range m {
					got, ok := d.path([]string{k, k2})
					if !ok || !reflect.DeepEqual(got, v2) {
						t.Fatalf("path %q.%q = %#v, want %#v", k, k2, got, v2)
					}
					if d.has([]string{k, k2}) != yes {
						t.Fatalf("has(%q.%q) is not yes", k, k2)
					}
				}
				if d.has([]string{k, "\x00none"}) != no {
					t.Fatalf("has(%q.none) is not no", k)
				}
			}
			cv := d.cel(f)
			if types.Equal(cv, types.DefaultTypeAdapter.NativeToValue(v)) != types.True && !strings.Contains(string(in), "NaN") {
				t.Fatalf("cel %q = %v, want %v", k, cv, v)
			}
			reads[k] = read{native: got, cel: cv.Value()}
		}
		if d.field("\x00none") != nil || d.has([]string{"\x00none"}) != no {
			t.Fatal("a missing field is found")
		}
		obj := d.object()
		// Values handed out must not point into the caller's buffer.
		for i := range buf {
			buf[i] = 'x'
		}
		if !reflect.DeepEqual(obj, want) {
			t.Fatalf("object %#v, want %#v", obj, want)
		}
		for k, r := range reads {
			if !reflect.DeepEqual(r.native, want[k]) || !reflect.DeepEqual(r.cel, types.DefaultTypeAdapter.NativeToValue(want[k]).Value()) {
				t.Fatalf("value of %q changed with the input buffer", k)
			}
		}
		dv := dataValue{&d}
		if n, _ := dv.Size().(types.Int); int(n) != len(want) {
			t.Fatalf("size %v, want %d", dv.Size(), len(want))
		}
		if !reflect.DeepEqual(dv.Value(), want) {
			t.Fatal("data value differs")
		}
	})
}

// FuzzAppendJSON: keys of lists and objects are written as encoding/json writes them.
func FuzzAppendJSON(f *testing.F) {
	for _, s := range dataSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 1<<16 {
			return
		}
		check := func(v any) {
			var b strings.Builder
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			werr := enc.Encode(v)
			got, ok := appendJSON(nil, v)
			if !ok {
				if werr == nil {
					t.Fatalf("appendJSON refused %#v", v)
				}
				return
			}
			if want := strings.TrimSuffix(b.String(), "\n"); werr != nil || string(got) != want {
				t.Fatalf("appendJSON %s, encoding/json %q (%v)", got, want, werr)
			}
		}
		check(string(in)) // any bytes, invalid UTF-8 included
		m, err := decodeData(in, maxDataDepth)
		if err != nil {
			return
		}
		check(m)
		for _, v := range m {
			check(v)
			check([]any{v, int64(len(in)), uint64(7), -3})
		}
	})
}

func TestAppendJSONNumbers(t *testing.T) {
	for _, f := range []float64{0, -0.0, 1, -1.5, 1e-7, 1e-6, 1e20, 1e21, 123456789.125, 5e-324, 1.7976931348623157e308} {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode([]any{f})
		got, _ := appendJSON(nil, []any{f})
		if want := strings.TrimSuffix(b.String(), "\n"); string(got) != want {
			t.Errorf("%v: appendJSON %s, encoding/json %s", f, got, want)
		}
	}
}

// TestSpecialByte: the eight-byte test of skipString finds every byte the byte-wise scan must
// look at, and only those.
func TestSpecialByte(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 1_000_000; i++ {
		var b [8]byte
		for j := range b {
			switch r.IntN(4) {
			case 0:
				b[j] = byte(r.IntN(256))
			default:
				b[j] = byte(0x20 + r.IntN(0x60)) // mostly ordinary ASCII
			}
		}
		want := false
		for _, c := range b {
			want = want || strByte[c] != 0
		}
		if got := specialByte(binary.LittleEndian.Uint64(b[:])); got != want {
			t.Fatalf("%q: specialByte %v, want %v", b, got, want)
		}
	}
}
