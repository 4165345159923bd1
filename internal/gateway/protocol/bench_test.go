package protocol_test

import (
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/pipewarden/pipewarden/internal/gateway/protocol"
)

// kserveBody is a seeded KServe v2 request of about size bytes: rows of 13 features written
// with the shortest round-trip representation, as Python and Go clients write them.
func kserveBody(size int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	var vals []byte
	n := 0
	for len(vals) < size-120 {
		if n > 0 {
			vals = append(vals, ',')
		}
		vals = strconv.AppendFloat(vals, rng.NormFloat64()*10, 'g', -1, 64)
		n++
	}
	for n%13 != 0 { // whole rows
		vals = append(vals, ",0.5"...)
		n++
	}
	head := `{"id":"bench","inputs":[{"name":"input-0","shape":[` + strconv.Itoa(n/13) + `,13],"datatype":"FP64","data":[`
	return append(append([]byte(head), vals...), "]}]}"...)
}

func BenchmarkKServe6KB(b *testing.B) {
	body := kserveBody(6 << 10)
	b.Run("scanner", func(b *testing.B) {
		p := protocol.NewParser(protocol.KServeV2, protocol.Limits{})
		var r protocol.Request
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if err := p.Parse(body, protocol.Meta{HeaderLength: -1}, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json_struct", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			var req struct {
				Inputs []struct {
					Name     string    `json:"name"`
					Shape    []int     `json:"shape"`
					Datatype string    `json:"datatype"`
					Data     []float64 `json:"data"`
				} `json:"inputs"`
			}
			if err := json.Unmarshal(body, &req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json_any", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			var req map[string]any
			if err := json.Unmarshal(body, &req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestBenchBodyIsValid keeps the benchmark honest: the scanner reads every value of the body.
func TestBenchBodyIsValid(t *testing.T) {
	body := kserveBody(6 << 10)
	var ref struct {
		Inputs []struct {
			Data []float64 `json:"data"`
		} `json:"inputs"`
	}
	if err := json.Unmarshal(body, &ref); err != nil {
		t.Fatal(err)
	}
	var r protocol.Request
	if err := protocol.NewParser(protocol.KServeV2, protocol.Limits{}).Parse(body, protocol.Meta{HeaderLength: -1}, &r); err != nil {
		t.Fatal(err)
	}
	if len(body) < 6000 || len(body) > 6400 || len(r.Vals) != len(ref.Inputs[0].Data) || r.Width != 13 {
		t.Fatalf("body %d bytes, %d values (want %d), width %d", len(body), len(r.Vals), len(ref.Inputs[0].Data), r.Width)
	}
	for i, v := range ref.Inputs[0].Data {
		if r.Vals[i] != v {
			t.Fatalf("value %d = %v, want %v", i, r.Vals[i], v)
		}
	}
}
