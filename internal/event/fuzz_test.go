package event_test

import (
	"encoding/json"
	"testing"

	"github.com/pipewarden/pipewarden/internal/event"
)

func FuzzDecode(f *testing.F) {
	f.Add([]byte(goodBatch))
	f.Add([]byte(`[` + goodBatch + `,` + goodBatch + `]`))
	for typ, data := range event.Examples() {
		f.Add([]byte(ev(typ, data)))
	}
	f.Add([]byte(`[[[[{}]]]]`))
	f.Add([]byte(`{"specversion":"1.0","id":"a","source":"s","type":"pipewarden.access.auth","data":{"principal":"\u0000","result":"success","source_ip":"x"}}`))
	d := event.NewDecoder(event.Limits{MaxBodyBytes: 1 << 16, MaxEventBytes: 1 << 14, MaxBatch: 50, MaxDepth: 16}, nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, err := d.Decode(body)
		if err == nil && !json.Valid(body) {
			t.Fatalf("accepted a body that is not valid JSON: %q", body)
		}
		if err != nil {
			if evs != nil {
				t.Fatal("events returned with an error")
			}
			return
		}
		if len(evs) == 0 {
			t.Fatal("no events and no error")
		}
		for _, e := range evs {
			if e.ID == "" || e.Type == "" || e.Source == "" || e.Time.IsZero() || len(e.Raw) == 0 {
				t.Fatalf("accepted event missing attributes: %+v", e)
			}
			// What was accepted must be accepted again from its stored form.
			if _, err := d.Decode(e.Raw); err != nil {
				t.Fatalf("stored form of an accepted event is rejected: %v\n%s", err, e.Raw)
			}
		}
	})
}
