package event

import (
	"bytes"
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
// all events or, if any is bad, an error naming each bad one: *Error or Errors. The body is read
// in one pass.
func (d *Decoder) Decode(body []byte) ([]Event, error) {
	if int64(len(body)) > d.limits.MaxBodyBytes {
		return nil, &Error{Index: -1, Reason: fmt.Sprintf("body of %d bytes exceeds the limit of %d bytes", len(body), d.limits.MaxBodyBytes), Err: ErrTooLarge}
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, &Error{Index: -1, Reason: "empty body: send one event object or an array of events"}
	}
	if !utf8.Valid(body) {
		return nil, &Error{Index: -1, Reason: "invalid UTF-8 in body"}
	}
	s := &scanner{b: body, maxDepth: d.limits.MaxDepth}
	var evs []Event
	var errs Errors
	switch body[0] {
	case '{':
		if len(body) > d.limits.MaxEventBytes {
			return nil, &Error{Index: 0, Reason: fmt.Sprintf("event of %d bytes exceeds the limit of %d bytes", len(body), d.limits.MaxEventBytes), Err: ErrTooLarge}
		}
		ev, verr, err := d.decodeAt(s, 0)
		if err != nil {
			return nil, syntaxErr(err, d.limits.MaxDepth)
		}
		if s.ws(); s.i != len(s.b) {
			return nil, &Error{Index: -1, Reason: "invalid JSON: " + s.fail("unexpected data after the event").Error()}
		}
		if verr != nil {
			return nil, verr
		}
		return []Event{ev}, nil
	case '[':
		evs = make([]Event, 0, min(d.limits.MaxBatch, 1+len(body)/256))
		seen := make(map[string]bool, cap(evs))
		err := s.array(func(idx int) error {
			if idx >= d.limits.MaxBatch {
				return &Error{Index: -1, Reason: fmt.Sprintf("batch exceeds the limit of %d events", d.limits.MaxBatch), Err: ErrTooLarge}
			}
			start := s.i
			ev, verr, err := d.decodeAt(s, idx)
			if err != nil {
				return err
			}
			switch {
			case s.i-start > d.limits.MaxEventBytes:
				errs = append(errs, &Error{Index: idx, ID: ev.ID, Reason: fmt.Sprintf("event of %d bytes exceeds the limit of %d bytes", s.i-start, d.limits.MaxEventBytes), Err: ErrTooLarge})
			case verr != nil:
				errs = append(errs, verr)
			case seen[ev.ID]:
				// The same id twice in one batch is stored once, like a retry (see
				// docs/decisions.md: pipewarden keys events on id alone).
			default:
				seen[ev.ID] = true
				evs = append(evs, ev)
			}
			return nil
		})
		if err != nil {
			return nil, syntaxErr(err, d.limits.MaxDepth)
		}
		if s.ws(); s.i != len(s.b) {
			return nil, &Error{Index: -1, Reason: "invalid JSON: " + s.fail("unexpected data after the batch").Error()}
		}
		if len(errs) > 0 {
			return nil, errs
		}
		if len(evs) == 0 {
			return nil, &Error{Index: -1, Reason: "empty batch"}
		}
		return evs, nil
	default:
		return nil, &Error{Index: -1, Reason: "invalid JSON: body must be an event object or an array of events"}
	}
}

func syntaxErr(err error, maxDepth int) error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, errDepth) {
		return &Error{Index: -1, Reason: fmt.Sprintf("JSON nested deeper than %d levels", maxDepth)}
	}
	return &Error{Index: -1, Reason: "invalid JSON: " + err.Error()}
}

// member is one top-level field of an event's data.
type member struct {
	key        []byte
	start, end int
}

type attr struct {
	raw     []byte
	esc     bool
	present bool
	bad     bool // present but not a string
}

func (a attr) value() string {
	v, _ := unquote(a.raw, a.esc)
	return v
}

// decodeAt reads the event object at the scanner. A syntax error (err) ends the whole body; a
// validation error (verr) names this event only.
func (d *Decoder) decodeAt(s *scanner, idx int) (ev Event, verr *Error, err error) {
	s.ws()
	start := s.i
	if s.peek() != '{' {
		if _, _, err := s.value(); err != nil {
			return ev, nil, err
		}
		return ev, &Error{Index: idx, Reason: "must be a JSON object"}, nil
	}
	var spec, id, source, typ, tim, subject, dct attr
	var hasB64, hasData bool
	var dataStart, dataEnd int
	data := make([]member, 0, 16)
	dataIsObject := false
	err = s.object(func(k []byte, esc bool) error {
		if esc {
			u, _ := unquote(k, esc)
			k = []byte(u)
		}
		var a *attr
		switch string(k) {
		case "specversion":
			a = &spec
		case "id":
			a = &id
		case "source":
			a = &source
		case "type":
			a = &typ
		case "time":
			a = &tim
		case "subject":
			a = &subject
		case "datacontenttype":
			a = &dct
		case "data_base64":
			hasB64 = true
		case "data":
			hasData = true
			dataStart = s.i
			if s.peek() == '{' {
				dataIsObject = true
				data = data[:0]
				err := s.object(func(dk []byte, desc bool) error {
					if desc {
						u, _ := unquote(dk, desc)
						dk = []byte(u)
					}
					vs, ve, err := s.value()
					data = append(data, member{key: dk, start: vs, end: ve})
					return err
				})
				dataEnd = s.i
				return err
			}
			dataIsObject = false
			var err error
			_, dataEnd, err = s.value()
			return err
		}
		if a == nil {
			_, _, err := s.value()
			return err
		}
		switch s.peek() {
		case '"':
			raw, e, err := s.str()
			*a = attr{raw: raw, esc: e, present: true}
			return err
		case 'n':
			*a = attr{}
			return s.lit("null") // null is absent
		default:
			*a = attr{present: true, bad: true}
			_, _, err := s.value()
			return err
		}
	})
	if err != nil {
		return ev, nil, err
	}
	raw := s.b[start:s.i]
	idv := id.value()
	fail := func(field, reason string) (Event, *Error, error) {
		return Event{}, &Error{Index: idx, ID: idv, Field: field, Reason: reason}, nil
	}
	for _, c := range []struct {
		name string
		a    attr
	}{{"specversion", spec}, {"id", id}, {"source", source}, {"type", typ}, {"time", tim}, {"subject", subject}, {"datacontenttype", dct}} {
		if c.a.bad {
			if c.name == "id" {
				idv = ""
			}
			return fail(c.name, "must be a string")
		}
	}
	switch {
	case !spec.present:
		return fail("specversion", `is required (use "1.0")`)
	case spec.value() != SpecVersion:
		return fail("specversion", fmt.Sprintf("%q is not supported (use \"1.0\")", spec.value()))
	case idv == "":
		return fail("id", "is required and must be a non-empty string")
	case len(idv) > maxIDLen:
		idv = ""
		return fail("id", fmt.Sprintf("longer than %d bytes", maxIDLen))
	case source.value() == "":
		return fail("source", "is required and must be a non-empty URI-reference")
	case len(source.raw) > maxSourceLen:
		return fail("source", fmt.Sprintf("longer than %d bytes", maxSourceLen))
	case typ.value() == "":
		return fail("type", "is required")
	case len(subject.raw) > maxSubjectLen:
		return fail("subject", fmt.Sprintf("longer than %d bytes", maxSubjectLen))
	case hasB64:
		return fail("data_base64", "binary data is not accepted; send JSON in data")
	case dct.present && !isJSONContentType(dct.value()):
		return fail("datacontenttype", fmt.Sprintf("%q is not JSON", dct.value()))
	}
	ts, ok := Lookup(typ.value())
	if !ok {
		return fail("type", fmt.Sprintf("unknown type %q (known: %s)", typ.value(), strings.Join(Types(), ", ")))
	}
	ev = Event{ID: idv, Source: source.value(), Type: typ.value(), Subject: subject.value(), Raw: raw}
	if hasData {
		ev.Data = s.b[dataStart:dataEnd]
	}
	if tim.present {
		t, err := time.Parse(time.RFC3339Nano, tim.value())
		if err != nil {
			return fail("time", fmt.Sprintf("%q is not an RFC 3339 timestamp", tim.value()))
		}
		ev.Time = t.UTC()
	} else {
		ev.Time = d.now().UTC()
		ev.Raw = withTime(raw, ev.Time)
	}
	switch {
	case !hasData || string(ev.Data) == "null":
		return fail("data", fmt.Sprintf("is required for %s", ts.Type))
	case !dataIsObject:
		return fail("data", "must be a JSON object")
	}
	assets, e := validateData(ts, s.b, data)
	if e != nil {
		e.Index, e.ID = idx, idv
		return Event{}, e, nil
	}
	ev.Assets = assets
	return ev, nil, nil
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
