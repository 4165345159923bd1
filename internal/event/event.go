// Package event defines pipewarden's one input type: a CloudEvents 1.0 event in structured JSON
// mode, the v1 vocabulary of event types, and decoding with validation and hard limits.
package event

import (
	"encoding/json"
	"strings"
	"time"
)

// SpecVersion is the only CloudEvents version accepted.
const SpecVersion = "1.0"

// Event is one CloudEvent. Raw holds the event exactly as it is stored and served back; the
// other fields are parsed from it for indexing and routing.
type Event struct {
	ID      string          `json:"id"`
	Source  string          `json:"source"`
	Type    string          `json:"type"`
	Time    time.Time       `json:"time"`
	Subject string          `json:"subject,omitempty"`
	Data    json.RawMessage `json:"data"`
	// Raw is the whole event as JSON, including extension attributes and extra data fields.
	Raw json.RawMessage `json:"-"`
	// Assets are the assets the event's data names (dataset, model, endpoint, client, ...).
	Assets []Asset `json:"-"`
	// Seq is the store's arrival sequence number, set when the event is first stored (0 for a
	// retry of an event already stored).
	Seq int64 `json:"-"`
}

// Asset is a thing in the pipeline that events name.
type Asset struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// Stage is the pipeline stage of a type such as pipewarden.data.batch ("data").
func (e *Event) Stage() string { return StageOf(e.Type) }

// StageOf returns the <stage> part of pipewarden.<stage>.<what>.
func StageOf(typ string) string {
	rest, ok := strings.CutPrefix(typ, "pipewarden.")
	if !ok {
		return ""
	}
	stage, _, _ := strings.Cut(rest, ".")
	return stage
}

// DataMap decodes the top level of Data. It is for consumers (rules, detectors) that need the
// fields; ingestion itself never builds it.
func (e *Event) DataMap() (map[string]any, error) {
	var m map[string]any
	if len(e.Data) == 0 || string(e.Data) == "null" {
		return map[string]any{}, nil
	}
	if err := json.Unmarshal(e.Data, &m); err != nil {
		return nil, err
	}
	return m, nil
}
