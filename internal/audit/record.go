package audit

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Kind says what a record is about. New kinds are added, never renamed.
type Kind string

// Record kinds (docs/audit.md gives the Data fields of each).
const (
	KindEvent        Kind = "event"        // an ingested event: id, type, digest
	KindFinding      Kind = "finding"      // a finding raised by a rule or detector
	KindAlert        Kind = "alert"        // an alert state change
	KindNotification Kind = "notification" // a notification sent (or failed)
	KindAction       Kind = "action"       // a response action: requested, approved, executed, result
	KindSilence      Kind = "silence"      // a silence created, expired or deleted
	KindConfig       Kind = "config"       // a rule or configuration reload
	KindToken        Kind = "token"        // a token created, revoked, or its role changed
	KindAPI          Kind = "api"          // an API call that changed state
)

var kinds = map[Kind]bool{
	KindEvent: true, KindFinding: true, KindAlert: true, KindNotification: true, KindAction: true,
	KindSilence: true, KindConfig: true, KindToken: true, KindAPI: true,
}

// MaxRecordSize bounds one record's canonical JSON, on the way in and on the way out.
const MaxRecordSize = 1 << 20

// Record is one entry of the audit log. Its stored form is canonical JSON (see canonical.go)
// with the log index added, so the same record always hashes the same.
type Record struct {
	Kind    Kind           `json:"kind"`
	Actor   string         `json:"actor,omitempty"`   // who: token name, principal, "system"
	Action  string         `json:"action,omitempty"`  // what happened: "ingested", "acknowledged", ...
	Subject string         `json:"subject,omitempty"` // what it happened to: asset, alert id, ...
	Time    time.Time      `json:"time"`
	Data    map[string]any `json:"data,omitempty"`
	// Event, set instead of Data, is an event record's data, written without building a map
	// (there is one event record per ingested event). It is stored exactly as Data holding
	// the same six fields would be, and reads back as Data.
	Event *EventData `json:"-"`
}

// EventData is the data of a KindEvent record.
type EventData struct {
	ID, Type, Source, Stage string
	Sum                     [32]byte // SHA-256 of the event as received; stored as "sha256:<hex>"
	Seq                     int64
}

// appendCanonical writes d as appendObject writes the equivalent map: keys in canonical order.
func (d *EventData) appendCanonical(b []byte) []byte {
	b = append(b, `{"digest":"sha256:`...)
	b = hex.AppendEncode(b, d.Sum[:])
	b = append(b, `","id":`...)
	b = appendString(b, d.ID)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, d.Seq, 10)
	b = append(b, `,"source":`...)
	b = appendString(b, d.Source)
	b = append(b, `,"stage":`...)
	b = appendString(b, d.Stage)
	b = append(b, `,"type":`...)
	b = appendString(b, d.Type)
	return append(b, '}')
}

// Entry is a stored record with its index and the exact bytes the Merkle tree hashes.
type Entry struct {
	Index int64
	Raw   []byte
}

// Record decodes the entry's bytes.
func (e Entry) Record() (Record, error) {
	idx, r, err := ParseRecord(e.Raw)
	if err != nil {
		return Record{}, err
	}
	if idx != e.Index {
		return Record{}, fmt.Errorf("record at index %d says index %d", e.Index, idx)
	}
	return r, nil
}

// appendRecord appends the canonical JSON of r at index i:
// {"action":..,"actor":..,"data":{..},"index":i,"kind":..,"subject":..,"time":".."}, keys in
// that (sorted) order, empty action, actor, subject and data left out.
func appendRecord(b []byte, index int64, r *Record) ([]byte, error) {
	if !kinds[r.Kind] {
		return b, fmt.Errorf("record kind %q: want event, finding, alert, notification, action, silence, config, token or api", r.Kind)
	}
	b = append(b, '{')
	if r.Action != "" {
		b = append(b, `"action":`...)
		b = appendString(b, r.Action)
		b = append(b, ',')
	}
	if r.Actor != "" {
		b = append(b, `"actor":`...)
		b = appendString(b, r.Actor)
		b = append(b, ',')
	}
	if r.Event != nil {
		b = append(b, `"data":`...)
		b = r.Event.appendCanonical(b)
		b = append(b, ',')
	} else if len(r.Data) > 0 {
		b = append(b, `"data":`...)
		var err error
		if b, err = appendObject(b, r.Data, 1); err != nil {
			return b, fmt.Errorf("record data: %w", err)
		}
		b = append(b, ',')
	}
	b = append(b, `"index":`...)
	b = strconv.AppendInt(b, index, 10)
	b = append(b, `,"kind":`...)
	b = appendString(b, string(r.Kind))
	if r.Subject != "" {
		b = append(b, `,"subject":`...)
		b = appendString(b, r.Subject)
	}
	b = append(b, `,"time":`...)
	b = appendString(b, r.Time.UTC().Format(time.RFC3339Nano))
	return append(b, '}'), nil
}

// ErrNotCanonical is returned by ParseRecord for bytes that are JSON but not in canonical form.
var ErrNotCanonical = errors.New("record is not canonical JSON")

// ParseRecord decodes the stored bytes of one record (untrusted input: size, depth and duplicate
// keys are checked) and returns its index. The bytes must be exactly the canonical encoding.
func ParseRecord(raw []byte) (int64, Record, error) {
	if len(raw) > MaxRecordSize {
		return 0, Record{}, fmt.Errorf("record of %d bytes exceeds %d", len(raw), MaxRecordSize)
	}
	v, err := parseJSON(raw)
	if err != nil {
		return 0, Record{}, fmt.Errorf("parse record: %w", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return 0, Record{}, errors.New("parse record: not a JSON object")
	}
	var r Record
	str := func(key string, required bool) (string, error) {
		x, present := m[key]
		if !present {
			if required {
				return "", fmt.Errorf("parse record: %q missing", key)
			}
			return "", nil
		}
		s, ok := x.(string)
		if !ok {
			return "", fmt.Errorf("parse record: %q is not a string", key)
		}
		return s, nil
	}
	var kind, ts string
	if kind, err = str("kind", true); err != nil {
		return 0, r, err
	}
	r.Kind = Kind(kind)
	if r.Action, err = str("action", false); err != nil {
		return 0, r, err
	}
	if r.Actor, err = str("actor", false); err != nil {
		return 0, r, err
	}
	if r.Subject, err = str("subject", false); err != nil {
		return 0, r, err
	}
	if ts, err = str("time", true); err != nil {
		return 0, r, err
	}
	if r.Time, err = time.Parse(time.RFC3339Nano, ts); err != nil {
		return 0, r, fmt.Errorf("parse record: time: %w", err)
	}
	num, ok := m["index"].(json.Number)
	if !ok {
		return 0, r, errors.New("parse record: \"index\" missing or not a number")
	}
	index, err := strconv.ParseInt(string(num), 10, 64)
	if err != nil || index < 0 {
		return 0, r, fmt.Errorf("parse record: index %q is not a non-negative integer", num)
	}
	if d, present := m["data"]; present {
		if r.Data, ok = d.(map[string]any); !ok {
			return 0, r, errors.New("parse record: \"data\" is not an object")
		}
	}
	for k := range m {
		switch k {
		case "action", "actor", "data", "index", "kind", "subject", "time":
		default:
			return 0, r, fmt.Errorf("parse record: unknown field %q", k)
		}
	}
	again, err := appendRecord(nil, index, &r)
	if err != nil {
		return 0, r, fmt.Errorf("parse record: %w", err)
	}
	if !bytes.Equal(again, raw) {
		return index, r, ErrNotCanonical
	}
	return index, r, nil
}
