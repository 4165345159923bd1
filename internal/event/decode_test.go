package event_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/event"
)

var fixedNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func newDecoder(l event.Limits) *event.Decoder {
	return event.NewDecoder(l, func() time.Time { return fixedNow })
}

const goodBatch = `{"specversion":"1.0","id":"e1","source":"//ingest/job","type":"pipewarden.data.batch","time":"2026-11-26T10:00:00Z","subject":"customers","data":{"dataset":"customers","source":"s3://bucket/customers/2026-11-26.csv","rows":1200,"schema":[{"name":"age","type":"int"}],"digest":"sha256:abc","extra":{"kept":true}}}`

func TestDecodeValid(t *testing.T) {
	d := newDecoder(event.Limits{})
	evs, err := d.Decode([]byte(goodBatch))
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 {
		t.Fatalf("got %d events", len(evs))
	}
	ev := evs[0]
	if ev.ID != "e1" || ev.Type != "pipewarden.data.batch" || ev.Subject != "customers" || ev.Stage() != "data" {
		t.Errorf("unexpected event %+v", ev)
	}
	if !ev.Time.Equal(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("time = %v", ev.Time)
	}
	if !strings.Contains(string(ev.Raw), `"kept":true`) {
		t.Errorf("extra data fields must be kept, raw = %s", ev.Raw)
	}
	if len(ev.Assets) != 1 || ev.Assets[0] != (event.Asset{Kind: "dataset", Name: "customers"}) {
		t.Errorf("assets = %v", ev.Assets)
	}
}

func TestDecodeBatchAndMissingTime(t *testing.T) {
	d := newDecoder(event.Limits{})
	body := `[` + goodBatch + `,{"specversion":"1.0","id":"e2","source":"gw","type":"pipewarden.inference.request","data":{"endpoint":"fraud","client":"k1","status":200,"latency_ms":3.5,"features":[1,2.5,-3e2]}},` + goodBatch + `]`
	evs, err := d.Decode([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Fatalf("duplicate id in one batch must be stored once: got %d events", len(evs))
	}
	if !evs[1].Time.Equal(fixedNow) || !strings.Contains(string(evs[1].Raw), `"time":"2026-11-26T12:00:00Z"`) {
		t.Errorf("missing time must be stamped: %v %s", evs[1].Time, evs[1].Raw)
	}
	got := event.Event{}
	got.Raw = evs[1].Raw
	if _, err := d.Decode(evs[1].Raw); err != nil {
		t.Errorf("stamped raw event must decode again: %v", err)
	}
}

func ev(typ, data string) string {
	return fmt.Sprintf(`{"specversion":"1.0","id":"x","source":"s","type":%q,"data":%s}`, typ, data)
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		limits event.Limits
		want   string // substring of the error
		large  bool
	}{
		{"empty", ``, event.Limits{}, "empty body", false},
		{"not json", `hello`, event.Limits{}, "invalid JSON", false},
		{"broken json", `{"specversion":`, event.Limits{}, "invalid JSON", false},
		{"empty batch", `[]`, event.Limits{}, "empty batch", false},
		{"no specversion", `{"id":"a","source":"s","type":"pipewarden.access.auth","data":{}}`, event.Limits{}, "specversion: is required", false},
		{"wrong specversion", `{"specversion":"0.3","id":"a","source":"s","type":"t"}`, event.Limits{}, `"0.3" is not supported`, false},
		{"no id", `{"specversion":"1.0","source":"s","type":"t"}`, event.Limits{}, "id: is required", false},
		{"id not string", `{"specversion":"1.0","id":5,"source":"s","type":"t"}`, event.Limits{}, "id: must be a string", false},
		{"no source", `{"specversion":"1.0","id":"a","type":"t"}`, event.Limits{}, "source: is required", false},
		{"unknown type", ev("pipewarden.nope", `{}`), event.Limits{}, `type: unknown type "pipewarden.nope"`, false},
		{"bad time", `{"specversion":"1.0","id":"a","source":"s","type":"pipewarden.access.auth","time":"yesterday","data":{}}`, event.Limits{}, "time:", false},
		{"missing data", `{"specversion":"1.0","id":"a","source":"s","type":"pipewarden.access.auth"}`, event.Limits{}, "data: is required", false},
		{"data not object", ev("pipewarden.access.auth", `[1]`), event.Limits{}, "data: must be a JSON object", false},
		{"missing field", ev("pipewarden.access.auth", `{"principal":"p","result":"success"}`), event.Limits{}, "data.source_ip: is required", false},
		{"wrong enum", ev("pipewarden.access.auth", `{"principal":"p","result":"maybe","source_ip":"1.2.3.4"}`), event.Limits{}, `data.result: "maybe" is not one of`, false},
		{"number as string", ev("pipewarden.inference.request", `{"endpoint":"e","client":"c","status":"200","latency_ms":1}`), event.Limits{}, "data.status: must be an integer", false},
		{"float for integer", ev("pipewarden.inference.request", `{"endpoint":"e","client":"c","status":200.5,"latency_ms":1}`), event.Limits{}, "data.status: must be an integer", false},
		{"bad features", ev("pipewarden.inference.request", `{"endpoint":"e","client":"c","status":200,"latency_ms":1,"features":[1,"a"]}`), event.Limits{}, "data.features: element 1: must be a number", false},
		{"bad schema", ev("pipewarden.data.batch", `{"dataset":"d","source":"s","rows":1,"digest":"x","schema":[{"name":"a"}]}`), event.Limits{}, "data.schema: element 0", false},
		{"bool as string", ev("pipewarden.deploy.change", `{"endpoint":"e","model_digest":"m","actor":"a","approved":"yes"}`), event.Limits{}, "data.approved: must be a boolean", false},
		{"binary data", `{"specversion":"1.0","id":"a","source":"s","type":"pipewarden.access.auth","data_base64":"AAAA"}`, event.Limits{}, "data_base64", false},
		{"body too large", goodBatch, event.Limits{MaxBodyBytes: 100}, "exceeds the limit of 100 bytes", true},
		{"event too large", `[` + goodBatch + `]`, event.Limits{MaxEventBytes: 100}, "event 0 (id \"e1\"): event of", true},
		{"batch too long", `[` + goodBatch + `,` + goodBatch + `]`, event.Limits{MaxBatch: 1}, "batch exceeds the limit of 1 events", true},
		{"too deep", ev("pipewarden.access.auth", strings.Repeat(`[`, 40)+strings.Repeat(`]`, 40)), event.Limits{}, "nested deeper than 32", false},
		{"one bad in batch", `[` + goodBatch + `,` + ev("pipewarden.access.auth", `{}`) + `]`, event.Limits{}, "event 1 (id \"x\"): data.principal: is required", false},
		{"invalid utf8", "{\"specversion\":\"1.0\",\"id\":\"\xff\"}", event.Limits{}, "invalid UTF-8", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newDecoder(tc.limits).Decode([]byte(tc.body))
			if err == nil {
				t.Fatalf("want error containing %q, got none", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if got := errors.Is(err, event.ErrTooLarge); got != tc.large {
				// Errors (a batch) wraps nothing; only single errors carry the sentinel.
				var es event.Errors
				if !errors.As(err, &es) {
					t.Errorf("errors.Is(ErrTooLarge) = %v, want %v", got, tc.large)
				}
			}
		})
	}
}

func TestEveryTypeHasValidExample(t *testing.T) {
	examples := event.Examples()
	for _, typ := range event.Types() {
		data, ok := examples[typ]
		if !ok {
			t.Errorf("no example for %s", typ)
			continue
		}
		if _, err := newDecoder(event.Limits{}).Decode([]byte(ev(typ, data))); err != nil {
			t.Errorf("%s example rejected: %v", typ, err)
		}
	}
}
