package rules

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// encodeSnapshot must write what json.Marshal writes (the format Restore reads), including
// keys that need escaping, empty lists and more entries than one yield interval.
func TestEncodeSnapshotMatchesMarshal(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 123, time.UTC)
	s := snapshot{Version: snapshotVersion, Rules: map[string]snapCorr{}, Histories: map[string]snapHistory{}}
	var groups []snapGroup
	for i := range 3*snapshotYieldEvery + 7 {
		groups = append(groups, snapGroup{Key: fmt.Sprintf("client-%d\x00<ep&%d>\"", i, i%3), Touched: t0.Add(time.Duration(i)),
			Entry: &corrEntry{Times: []int64{int64(i), int64(i) + 1}, TNext: 1, IDs: []string{"a", "b"},
				Values: map[string]time.Time{"10.0.0.1": t0}, Hits: []seqHit{{Step: 1, Time: t0, ID: "e"}}}})
	}
	s.Rules["b_rule"] = snapCorr{FP: "fp<b>", Groups: groups}
	s.Rules["a_empty"] = snapCorr{FP: "fp-a", Groups: []snapGroup{}}
	s.Histories["src"] = snapHistory{FP: "h", Now: t0, Keys: []snapHistKey{{Key: "sales", Touched: t0,
		Entry: &histEntry{Count: 3, Last: "s3://b", LastTime: t0, Distinct: map[string]time.Time{"s3://a": t0}, Order: []string{"s3://a"}, Nums: []float64{1.5}}}}}
	s.Histories["empty"] = snapHistory{FP: "e", Keys: []snapHistKey{}}
	for name, sn := range map[string]snapshot{"full": s, "no rules or histories": {Version: snapshotVersion, Rules: map[string]snapCorr{}, Histories: map[string]snapHistory{}}} {
		got, err := encodeSnapshot(&sn, 0, time.Microsecond)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(got) {
			t.Fatalf("%s: not valid JSON: %.200s", name, got)
		}
		want, err := json.Marshal(sn)
		if err != nil {
			t.Fatal(err)
		}
		var g, w any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(want, &w); err != nil {
			t.Fatal(err)
		}
		if name == "no rules or histories" { // json.Marshal omits the empty maps (omitempty)
			w.(map[string]any)["rules"], w.(map[string]any)["histories"] = map[string]any{}, map[string]any{}
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s: encodeSnapshot differs from json.Marshal:\n got %.300s\nwant %.300s", name, got, want)
		}
	}
}
