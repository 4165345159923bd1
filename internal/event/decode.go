package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits bound what one request may carry. Zero fields take the defaults.
type Limits struct {
	MaxBodyBytes  int64 // whole request body; default 10 MiB
	MaxEventBytes int   // one event; default 1 MiB
	MaxBatch      int   // events in one batch; default 10,000
	MaxDepth      int   // JSON nesting depth; default 32
}

// DefaultLimits are the limits of issue #2.
func DefaultLimits() Limits {
	return Limits{MaxBodyBytes: 10 << 20, MaxEventBytes: 1 << 20, MaxBatch: 10000, MaxDepth: 32}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = d.MaxBodyBytes
	}
	if l.MaxEventBytes <= 0 {
		l.MaxEventBytes = d.MaxEventBytes
	}
	if l.MaxBatch <= 0 {
		l.MaxBatch = d.MaxBatch
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	return l
}

// Attribute bounds (bytes).
const (
	maxIDLen      = 256
	maxSourceLen  = 2048
	maxSubjectLen = 1024
	maxStringLen  = 64 << 10 // one data string field
)

// ErrTooLarge is wrapped by errors about a body, event or batch over its limit.
var ErrTooLarge = errors.New("too large")

// Error names the event (by index in the batch, -1 for the whole body) and the field at fault.
type Error struct {
	Index  int    // position in the batch; -1 when the body as a whole is bad
	ID     string // event id when known
	Field  string // "type", "data.rows", ...
	Reason string
	Err    error // wrapped sentinel, e.g. ErrTooLarge
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Index >= 0 {
		fmt.Fprintf(&b, "event %d", e.Index)
		if e.ID != "" {
			fmt.Fprintf(&b, " (id %q)", e.ID)
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Errors is every bad event of a batch; the batch is rejected whole.
type Errors []*Error

func (es Errors) Error() string {
	parts := make([]string, 0, len(es))
	for i, e := range es {
		if i == 10 {
			parts = append(parts, fmt.Sprintf("and %d more", len(es)-10))
			break
		}
		parts = append(parts, e.Error())
	}
	return strings.Join(parts, "; ")
}

// Decoder decodes and validates request bodies. It is safe for concurrent use.
type Decoder struct {
	limits Limits
	now    func() time.Time
}

// NewDecoder returns a decoder with the given limits; now stamps events without a time.
func NewDecoder(l Limits, now func() time.Time) *Decoder {
	if now == nil {
		now = time.Now
	}
	return &Decoder{limits: l.withDefaults(), now: now}
}

// Limits returns the effective limits.
func (d *Decoder) Limits() Limits { return d.limits }

// Decode parses a body holding one event (a JSON object) or a batch (a JSON array). It returns
// all events or, if any is bad, an error naming each bad one: *Error or Errors.
func (d *Decoder) Decode(body []byte) ([]Event, error) {
	if int64(len(body)) > d.limits.MaxBodyBytes {
		return nil, &Error{Index: -1, Reason: fmt.Sprintf("body of %d bytes exceeds the limit of %d bytes", len(body), d.limits.MaxBodyBytes), Err: ErrTooLarge}
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, &Error{Index: -1, Reason: "empty body: send one event object or an array of events"}
	}
	if err := checkDepth(body, d.limits.MaxDepth); err != nil {
		return nil, &Error{Index: -1, Reason: err.Error()}
	}
	switch body[0] {
	case '{':
		if len(body) > d.limits.MaxEventBytes {
			return nil, &Error{Index: 0, Reason: fmt.Sprintf("event of %d bytes exceeds the limit of %d bytes", len(body), d.limits.MaxEventBytes), Err: ErrTooLarge}
		}
		ev, err := d.decodeOne(body, 0)
		if err != nil {
			return nil, err
		}
		return []Event{ev}, nil
	case '[':
		var raws []json.RawMessage
		if err := json.Unmarshal(body, &raws); err != nil {
			return nil, &Error{Index: -1, Reason: "invalid JSON: " + jsonReason(err)}
		}
		if len(raws) == 0 {
			return nil, &Error{Index: -1, Reason: "empty batch"}
		}
		if len(raws) > d.limits.MaxBatch {
			return nil, &Error{Index: -1, Reason: fmt.Sprintf("batch of %d events exceeds the limit of %d", len(raws), d.limits.MaxBatch), Err: ErrTooLarge}
		}
		evs := make([]Event, 0, len(raws))
		var errs Errors
		seen := make(map[string]int, len(raws))
		for i, raw := range raws {
			if len(raw) > d.limits.MaxEventBytes {
				errs = append(errs, &Error{Index: i, Reason: fmt.Sprintf("event of %d bytes exceeds the limit of %d bytes", len(raw), d.limits.MaxEventBytes), Err: ErrTooLarge})
				continue
			}
			ev, err := d.decodeOne(raw, i)
			if err != nil {
				errs = append(errs, err.(*Error))
				continue
			}
			if _, dup := seen[ev.ID]; dup {
				// The same id twice in one batch is stored once, like a retry (CloudEvents:
				// source+id identify an event; pipewarden keys on id alone, see decisions.md).
				continue
			}
			seen[ev.ID] = i
			evs = append(evs, ev)
		}
		if len(errs) > 0 {
			return nil, errs
		}
		return evs, nil
	default:
		return nil, &Error{Index: -1, Reason: "invalid JSON: body must be an event object or an array of events"}
	}
}

// envelope is the CloudEvents context attributes pipewarden reads.
type envelope struct {
	SpecVersion     *string         `json:"specversion"`
	ID              *string         `json:"id"`
	Source          *string         `json:"source"`
	Type            *string         `json:"type"`
	Time            *string         `json:"time"`
	Subject         *string         `json:"subject"`
	DataContentType *string         `json:"datacontenttype"`
	DataBase64      json.RawMessage `json:"data_base64"`
	Data            json.RawMessage `json:"data"`
}

func (d *Decoder) decodeOne(raw []byte, idx int) (Event, error) {
	fail := func(id, field, reason string) (Event, error) {
		return Event{}, &Error{Index: idx, ID: id, Field: field, Reason: reason}
	}
	if !utf8.Valid(raw) {
		return fail("", "", "invalid UTF-8")
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) && ute.Field != "" {
			return fail("", ute.Field, "must be a string")
		}
		return fail("", "", "invalid JSON: "+jsonReason(err))
	}
	id := deref(env.ID)
	switch {
	case env.SpecVersion == nil:
		return fail(id, "specversion", `is required (use "1.0")`)
	case *env.SpecVersion != SpecVersion:
		return fail(id, "specversion", fmt.Sprintf("%q is not supported (use \"1.0\")", *env.SpecVersion))
	case env.ID == nil || *env.ID == "":
		return fail(id, "id", "is required and must be a non-empty string")
	case len(*env.ID) > maxIDLen:
		return fail("", "id", fmt.Sprintf("longer than %d bytes", maxIDLen))
	case env.Source == nil || *env.Source == "":
		return fail(id, "source", "is required and must be a non-empty URI-reference")
	case len(*env.Source) > maxSourceLen:
		return fail(id, "source", fmt.Sprintf("longer than %d bytes", maxSourceLen))
	case env.Type == nil || *env.Type == "":
		return fail(id, "type", "is required")
	case env.Subject != nil && len(*env.Subject) > maxSubjectLen:
		return fail(id, "subject", fmt.Sprintf("longer than %d bytes", maxSubjectLen))
	case len(env.DataBase64) > 0:
		return fail(id, "data_base64", "binary data is not accepted; send JSON in data")
	case env.DataContentType != nil && !isJSONContentType(*env.DataContentType):
		return fail(id, "datacontenttype", fmt.Sprintf("%q is not JSON", *env.DataContentType))
	}
	spec, ok := Lookup(*env.Type)
	if !ok {
		return fail(id, "type", fmt.Sprintf("unknown type %q (known: %s)", *env.Type, strings.Join(Types(), ", ")))
	}
	ev := Event{ID: id, Source: *env.Source, Type: *env.Type, Subject: deref(env.Subject), Data: env.Data, Raw: raw}
	if env.Time != nil {
		t, err := time.Parse(time.RFC3339Nano, *env.Time)
		if err != nil {
			return fail(id, "time", fmt.Sprintf("%q is not an RFC 3339 timestamp", *env.Time))
		}
		ev.Time = t.UTC()
	} else {
		ev.Time = d.now().UTC()
		ev.Raw = withTime(raw, ev.Time)
	}
	assets, verr := validateData(spec, env.Data)
	if verr != nil {
		verr.Index, verr.ID = idx, id
		return Event{}, verr
	}
	ev.Assets = assets
	return ev, nil
}

func isJSONContentType(ct string) bool {
	ct = strings.ToLower(strings.TrimSpace(ct))
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = strings.TrimSpace(ct[:i])
	}
	return ct == "application/json" || strings.HasSuffix(ct, "+json")
}

// withTime inserts a "time" attribute into an event object that has none.
func withTime(raw []byte, t time.Time) []byte {
	i := bytes.IndexByte(raw, '{')
	out := make([]byte, 0, len(raw)+48)
	out = append(out, raw[:i+1]...)
	out = append(out, `"time":`...)
	out = strconv.AppendQuote(out, t.Format(time.RFC3339Nano))
	rest := bytes.TrimSpace(raw[i+1:])
	if len(rest) > 0 && rest[0] != '}' {
		out = append(out, ',')
	}
	return append(out, rest...)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func jsonReason(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%v at byte %d", se, se.Offset)
	}
	return err.Error()
}

// checkDepth rejects JSON nested deeper than max without decoding it.
func checkDepth(b []byte, max int) error {
	depth := 0
	inStr := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inStr {
			switch c {
			case '\\':
				i++
			case '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '{', '[':
			depth++
			if depth > max {
				return fmt.Errorf("JSON nested deeper than %d levels", max)
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}
