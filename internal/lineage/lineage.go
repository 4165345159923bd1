// Package lineage turns OpenLineage run events into pipewarden events: every dataset a completed
// run wrote becomes a pipewarden.data.batch event carrying its source, schema, row count and
// version, so lineage-instrumented pipelines (Airflow, Spark, dbt, ...) feed the data rules
// without extra code.
package lineage

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// MaxDatasets bounds the outputs one run event may carry.
const MaxDatasets = 1000

// RunEvent is the part of an OpenLineage RunEvent pipewarden reads.
type RunEvent struct {
	EventType string    `json:"eventType"`
	EventTime string    `json:"eventTime"`
	Producer  string    `json:"producer"`
	Run       run       `json:"run"`
	Job       job       `json:"job"`
	Inputs    []dataset `json:"inputs"`
	Outputs   []dataset `json:"outputs"`
}

type run struct {
	RunID string `json:"runId"`
}

type job struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

type dataset struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Facets    struct {
		Schema *struct {
			Fields []struct {
				Name string `json:"name"`
				Type string `json:"type"`
			} `json:"fields"`
		} `json:"schema"`
		DataSource *struct {
			Name string `json:"name"`
			URI  string `json:"uri"`
		} `json:"dataSource"`
		Version *struct {
			DatasetVersion string `json:"datasetVersion"`
		} `json:"version"`
	} `json:"facets"`
	OutputFacets struct {
		OutputStatistics *struct {
			RowCount int64 `json:"rowCount"`
			Size     int64 `json:"size"`
		} `json:"outputStatistics"`
	} `json:"outputFacets"`
}

// Convert reads one OpenLineage RunEvent and returns the CloudEvents (JSON) it stands for: one
// pipewarden.data.batch per output dataset of a COMPLETE run; other run states carry no new data
// and give none. Event ids are derived from the run and dataset, so a re-sent run event is stored
// once.
func Convert(body []byte, now time.Time) ([]json.RawMessage, error) {
	var ev RunEvent
	dec := json.NewDecoder(strings.NewReader(string(body)))
	if err := dec.Decode(&ev); err != nil {
		return nil, fmt.Errorf("not an OpenLineage run event: %w", err)
	}
	switch {
	case ev.EventType == "":
		return nil, errors.New("eventType is required (START, RUNNING, COMPLETE, ABORT, FAIL or OTHER)")
	case ev.Run.RunID == "":
		return nil, errors.New("run.runId is required")
	case ev.Job.Name == "":
		return nil, errors.New("job.name is required")
	case len(ev.Outputs) > MaxDatasets:
		return nil, fmt.Errorf("%d outputs, more than the limit of %d", len(ev.Outputs), MaxDatasets)
	}
	if ev.EventType != "COMPLETE" {
		return nil, nil
	}
	at := now.UTC()
	if t, err := time.Parse(time.RFC3339Nano, ev.EventTime); err == nil {
		at = t.UTC()
	}
	out := make([]json.RawMessage, 0, len(ev.Outputs))
	for i, d := range ev.Outputs {
		if d.Name == "" {
			return nil, fmt.Errorf("outputs[%d].name is required", i)
		}
		source := d.Namespace
		if ds := d.Facets.DataSource; ds != nil && ds.URI != "" {
			source = ds.URI
		}
		schema := []map[string]string{}
		if s := d.Facets.Schema; s != nil {
			for _, f := range s.Fields {
				typ := f.Type
				if typ == "" {
					typ = "unknown"
				}
				if f.Name != "" {
					schema = append(schema, map[string]string{"name": f.Name, "type": typ})
				}
			}
		}
		var rows int64
		if st := d.OutputFacets.OutputStatistics; st != nil {
			rows = st.RowCount
		}
		digest := "openlineage-run:" + ev.Run.RunID
		if v := d.Facets.Version; v != nil && v.DatasetVersion != "" {
			digest = "version:" + v.DatasetVersion
		}
		name := d.Name
		id := sha256.Sum256([]byte(ev.Run.RunID + "\x00" + d.Namespace + "\x00" + d.Name))
		ce := map[string]any{
			"specversion": "1.0",
			"id":          "ol-" + hex.EncodeToString(id[:16]),
			"source":      "openlineage://" + ev.Job.Namespace + "/" + ev.Job.Name,
			"type":        "pipewarden.data.batch",
			"time":        at.Format(time.RFC3339Nano),
			"subject":     name,
			"data": map[string]any{
				"dataset": name, "source": source, "rows": rows, "schema": schema, "digest": digest,
				"lineage": map[string]any{"namespace": d.Namespace, "job": ev.Job.Namespace + "/" + ev.Job.Name,
					"run_id": ev.Run.RunID, "producer": ev.Producer, "inputs": inputNames(ev.Inputs)},
			},
		}
		b, err := json.Marshal(ce)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

func inputNames(ds []dataset) []string {
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		out = append(out, d.Namespace+"/"+d.Name)
	}
	return out
}
