package protocol_test

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/gateway/protocol"
)

// FuzzParse: no body makes a parser panic, run long, or keep more values than the limit.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}]}`,
		`{"instances":[{"b64":"aGk="},[1,NaN,-Infinity]]}`,
		`{"dataframe_split":{"columns":["a"],"data":[[1],[2]]}}`,
		`{"messages":[{"role":"user","content":"hi \ud83d\ude00"}]}`,
		"a,b\n1,2\n",
	} {
		f.Add([]byte(s), uint8(0), int16(-1))
	}
	f.Fuzz(func(t *testing.T, body []byte, kind uint8, headerLen int16) {
		if len(body) > 1<<16 {
			return
		}
		kinds := protocol.Kinds()
		k := kinds[int(kind)%len(kinds)]
		p := protocol.NewParser(k, protocol.Limits{MaxDepth: 32, MaxValues: 4096})
		ct := ""
		if kind&0x80 != 0 {
			ct = "text/csv"
		}
		var r protocol.Request
		start := time.Now()
		err := p.Parse(body, protocol.Meta{ContentType: ct, HeaderLength: int(headerLen)}, &r)
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("parse took %v", d)
		}
		if len(r.Vals) > 4096+1 {
			t.Fatalf("kept %d values over the limit", len(r.Vals))
		}
		if err == nil && r.Width > 0 && r.Rows*r.Width != len(r.Vals) {
			t.Fatalf("%d rows × %d != %d values", r.Rows, r.Width, len(r.Vals))
		}
		var scratch protocol.Request
		_, _ = p.Classes(body, &scratch, nil)
	})
}

// FuzzNumbers: the fast number path equals encoding/json on every document both accept.
func FuzzNumbers(f *testing.F) {
	for _, s := range []string{"0", "-0.0", "1e22", "1e23", "9007199254740993", "0.1234567890123456789", "123456789012345678901234567890e-20", "4.9e-324", "1.7976931348623157e308", "2e308", "-1.5E-3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, num string) {
		if len(num) > 400 {
			return
		}
		body := `{"inputs":[{"name":"x","datatype":"FP64","data":[` + num + `]}]}`
		var ref struct {
			Inputs []struct {
				Data []any `json:"data"`
			} `json:"inputs"`
		}
		dec := json.NewDecoder(strings.NewReader(body))
		dec.UseNumber()
		refErr := dec.Decode(&ref)
		if refErr == nil && dec.More() {
			refErr = errors.New("trailing data")
		}
		var r protocol.Request
		err := protocol.NewParser(protocol.KServeV2, protocol.Limits{}).Parse([]byte(body), protocol.Meta{HeaderLength: -1}, &r)
		if refErr != nil {
			if err == nil && len(r.Vals) == 1 {
				t.Fatalf("accepted %q that encoding/json rejects: %v", num, refErr)
			}
			return
		}
		if len(ref.Inputs) != 1 || len(ref.Inputs[0].Data) != 1 {
			return
		}
		jn, isNum := ref.Inputs[0].Data[0].(json.Number)
		if !isNum {
			return
		}
		want, perr := strconv.ParseFloat(string(jn), 64)
		if perr != nil && !math.IsInf(want, 0) {
			return
		}
		if err != nil {
			t.Fatalf("rejected %q: %v", num, err)
		}
		if len(r.Vals) != 1 || math.Float64bits(r.Vals[0]) != math.Float64bits(want) {
			t.Fatalf("%q: got %v, want %v", num, r.Vals, want)
		}
	})
}
