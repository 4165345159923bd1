package lineage_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/lineage"
)

const complete = `{"eventType":"COMPLETE","eventTime":"2026-11-26T10:00:00Z","producer":"https://github.com/OpenLineage/OpenLineage/tree/1.0.0/integration/airflow",
"run":{"runId":"3f5e83fa-3480-44ff-99c5-ff943904e5e8"},"job":{"namespace":"etl","name":"load_customers"},
"inputs":[{"namespace":"s3://raw","name":"customers.csv"}],
"outputs":[{"namespace":"postgres://db:5432","name":"analytics.customers",
 "facets":{"schema":{"fields":[{"name":"id","type":"BIGINT"},{"name":"age","type":"INT"}]},"dataSource":{"name":"db","uri":"postgres://db:5432/analytics"},"version":{"datasetVersion":"v42"}},
 "outputFacets":{"outputStatistics":{"rowCount":1200,"size":34000}}}]}`

func TestCompleteRunBecomesValidBatchEvents(t *testing.T) {
	raws, err := lineage.Convert([]byte(complete), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(raws) != 1 {
		t.Fatalf("got %d events, want 1", len(raws))
	}
	evs, err := event.NewDecoder(event.Limits{}, nil).Decode(raws[0])
	if err != nil {
		t.Fatalf("converted event rejected by the decoder: %v\n%s", err, raws[0])
	}
	var d map[string]any
	json.Unmarshal(evs[0].Data, &d)
	if d["dataset"] != "analytics.customers" || d["source"] != "postgres://db:5432/analytics" || d["rows"] != float64(1200) || d["digest"] != "version:v42" {
		t.Errorf("data = %v", d)
	}
	again, _ := lineage.Convert([]byte(complete), time.Now())
	if string(again[0]) != string(raws[0]) {
		t.Error("a re-sent run event must convert to the same event (same id)")
	}
}

func TestOtherStatesAndErrors(t *testing.T) {
	start := strings.Replace(complete, "COMPLETE", "START", 1)
	if raws, err := lineage.Convert([]byte(start), time.Now()); err != nil || len(raws) != 0 {
		t.Errorf("START = %d, %v; want no events", len(raws), err)
	}
	tests := map[string]string{
		"not json":  `{`,
		"no type":   `{"run":{"runId":"r"},"job":{"name":"j"}}`,
		"no run id": `{"eventType":"COMPLETE","job":{"name":"j"}}`,
		"no job":    `{"eventType":"COMPLETE","run":{"runId":"r"}}`,
		"no name":   `{"eventType":"COMPLETE","run":{"runId":"r"},"job":{"name":"j"},"outputs":[{"namespace":"x"}]}`,
	}
	for name, body := range tests {
		if _, err := lineage.Convert([]byte(body), time.Now()); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

func TestFixtureExample(t *testing.T) {
	b, err := os.ReadFile("../../../shared/fixtures/openlineage/example_full_event.json")
	if err != nil {
		t.Fatal(err)
	}
	raws, err := lineage.Convert(b, time.Now())
	if err != nil || len(raws) != 0 {
		t.Errorf("the upstream example (a COMPLETE run with no outputs) = %d events, %v", len(raws), err)
	}
}

func FuzzConvert(f *testing.F) {
	f.Add([]byte(complete))
	f.Add([]byte(`{"eventType":"COMPLETE","run":{"runId":"r"},"job":{"name":"j"},"outputs":[{"name":"a","facets":{"schema":{"fields":[{"name":""}]}}}]}`))
	d := event.NewDecoder(event.Limits{}, nil)
	f.Fuzz(func(t *testing.T, b []byte) {
		raws, err := lineage.Convert(b, time.Now())
		if err != nil {
			return
		}
		for _, r := range raws {
			if _, err := d.Decode(r); err != nil {
				t.Fatalf("converted event rejected: %v\n%s", err, r)
			}
		}
	})
}
