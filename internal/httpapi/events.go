package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/lineage"
	"github.com/pipewarden/pipewarden/internal/store"
)

var acceptedTypes = map[string]bool{
	"application/json":                   true,
	"application/cloudevents+json":       true,
	"application/cloudevents-batch+json": true,
}

// postEvents takes one event or a batch and answers 202 only once they are committed.
func (s *Server) postEvents(w http.ResponseWriter, r *http.Request) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !acceptedTypes[mt] {
		s.rejected.WithLabelValues("content_type").Inc()
		writeError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q is not accepted: use application/cloudevents+json, application/cloudevents-batch+json or application/json", r.Header.Get("Content-Type")))
		return
	}
	if s.refuseWhenFull(w) {
		return
	}
	limit := s.opts.Decoder.Limits().MaxBodyBytes
	body, err := readBody(w, r, limit)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.rejected.WithLabelValues("too_large").Inc()
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body exceeds the limit of %d bytes", limit))
			return
		}
		s.rejected.WithLabelValues("read").Inc()
		writeError(w, http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	evs, err := s.opts.Decoder.Decode(body)
	if err != nil {
		s.writeDecodeError(w, err)
		return
	}
	s.ingestAndAnswer(w, r, evs)
}

// ingestAndAnswer stores events and answers 202 with their ids, or why not.
func (s *Server) ingestAndAnswer(w http.ResponseWriter, r *http.Request, evs []event.Event) {
	event.CountByType(evs, func(typ string, n int) { s.received.WithLabelValues(typ).Add(float64(n)) })
	if err := s.opts.Ingester.Ingest(r.Context(), evs); err != nil {
		if errors.Is(err, ErrBackpressure) {
			s.writeBackpressure(w)
			return
		}
		s.rejected.WithLabelValues("store").Inc()
		s.log.Error("ingest", "events", len(evs), "err", err)
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "events could not be stored; nothing was acknowledged, retry")
		return
	}
	writeAccepted(w, evs)
}

// refuseWhenFull answers 429 at once when a consumer's queue is full, before the body is read
// and decoded for nothing: under overload refused requests then cost little.
func (s *Server) refuseWhenFull(w http.ResponseWriter) bool {
	rc, ok := s.opts.Ingester.(RoomChecker)
	if !ok || !errors.Is(rc.CheckRoom(), ErrBackpressure) {
		return false
	}
	s.writeBackpressure(w)
	return true
}

func (s *Server) writeBackpressure(w http.ResponseWriter) {
	s.rejected.WithLabelValues("backpressure").Inc()
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusTooManyRequests, "consumers are behind: retry after 1 second; nothing was stored")
}

// postLineage takes an OpenLineage run event (the path OpenLineage clients use with an HTTP
// transport) and ingests the pipewarden events it stands for.
func (s *Server) postLineage(w http.ResponseWriter, r *http.Request) {
	if s.refuseWhenFull(w) {
		return
	}
	limit := s.opts.Decoder.Limits().MaxBodyBytes
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		s.rejected.WithLabelValues("too_large").Inc()
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body exceeds the limit of %d bytes", limit))
		return
	}
	raws, err := lineage.Convert(body, s.opts.Now())
	if err != nil {
		s.rejected.WithLabelValues("invalid").Inc()
		writeError(w, http.StatusBadRequest, "OpenLineage: "+err.Error())
		return
	}
	if len(raws) == 0 {
		writeAccepted(w, nil)
		return
	}
	batch, _ := json.Marshal(raws)
	evs, err := s.opts.Decoder.Decode(batch)
	if err != nil {
		s.writeDecodeError(w, err)
		return
	}
	s.ingestAndAnswer(w, r, evs)
}

func (s *Server) writeDecodeError(w http.ResponseWriter, err error) {
	code := http.StatusBadRequest
	body := apiError{Error: err.Error()}
	var one *event.Error
	var many event.Errors
	switch {
	case errors.As(err, &many):
		for _, e := range many {
			body.Events = append(body.Events, eventError{Index: e.Index, ID: e.ID, Field: e.Field, Reason: e.Reason})
		}
		body.Error = fmt.Sprintf("batch rejected, nothing stored: %d bad event(s): %s", len(many), many.Error())
	case errors.As(err, &one):
		if one.Index >= 0 {
			body.Events = []eventError{{Index: one.Index, ID: one.ID, Field: one.Field, Reason: one.Reason}}
		}
	}
	reason := "invalid"
	if errors.Is(err, event.ErrTooLarge) {
		code, reason = http.StatusRequestEntityTooLarge, "too_large"
	}
	s.rejected.WithLabelValues(reason).Inc()
	writeJSON(w, code, body)
}

// queryError is a bad query parameter.
type queryError struct{ msg string }

func (e *queryError) Error() string { return e.msg }

type query struct {
	r   *http.Request
	err error
}

func (q *query) str(name string) string { return q.r.URL.Query().Get(name) }

func (q *query) time(name string) time.Time {
	v := q.str(name)
	if v == "" || q.err != nil {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		q.err = &queryError{fmt.Sprintf("%s: %q is not an RFC 3339 timestamp", name, v)}
	}
	return t
}

func (q *query) int(name string, max int) int {
	v := q.str(name)
	if v == "" || q.err != nil {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		q.err = &queryError{fmt.Sprintf("%s: %q is not a number between 1 and %d", name, v, max)}
	}
	return n
}

func (q *query) severity(name string) finding.Severity {
	v := q.str(name)
	if v == "" || q.err != nil {
		return finding.Info
	}
	sev, err := finding.ParseSeverity(v)
	if err != nil {
		q.err = &queryError{name + ": " + err.Error()}
	}
	return sev
}

// writeList answers a listing or its error.
func writeList[T any](s *Server, w http.ResponseWriter, p store.Page[T], err error) {
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, p)
	case errors.Is(err, store.ErrBadCursor):
		writeError(w, http.StatusBadRequest, "cursor: invalid; use the 'next' value of a previous page")
	default:
		s.log.Error("list", "err", err)
		writeError(w, http.StatusInternalServerError, "the store could not be read")
	}
}

func (s *Server) getEvents(w http.ResponseWriter, r *http.Request) {
	q := &query{r: r}
	eq := store.EventQuery{Type: q.str("type"), Subject: q.str("subject"), Since: q.time("since"), Until: q.time("until"), Limit: q.int("limit", 1000), Cursor: q.str("cursor")}
	if q.err != nil {
		writeError(w, http.StatusBadRequest, q.err.Error())
		return
	}
	p, err := s.opts.Reader.ListEvents(r.Context(), eq)
	writeList(s, w, p, err)
}

func (s *Server) getFindings(w http.ResponseWriter, r *http.Request) {
	q := &query{r: r}
	fq := store.FindingQuery{Rule: q.str("rule"), MinSeverity: q.severity("severity"), SubjectName: q.str("subject"), Since: q.time("since"), Limit: q.int("limit", 1000), Cursor: q.str("cursor")}
	if q.err != nil {
		writeError(w, http.StatusBadRequest, q.err.Error())
		return
	}
	p, err := s.opts.Reader.ListFindings(r.Context(), fq)
	writeList(s, w, p, err)
}

func (s *Server) getAlerts(w http.ResponseWriter, r *http.Request) {
	q := &query{r: r}
	aq := store.AlertQuery{State: q.str("state"), Limit: q.int("limit", 1000), Cursor: q.str("cursor")}
	if q.err != nil {
		writeError(w, http.StatusBadRequest, q.err.Error())
		return
	}
	p, err := s.opts.Reader.ListAlerts(r.Context(), aq)
	writeList(s, w, p, err)
}

func (s *Server) getAssets(w http.ResponseWriter, r *http.Request) {
	q := &query{r: r}
	aq := store.AssetQuery{Kind: q.str("kind"), Limit: q.int("limit", 1000), Cursor: q.str("cursor")}
	if q.err != nil {
		writeError(w, http.StatusBadRequest, q.err.Error())
		return
	}
	p, err := s.opts.Reader.ListAssets(r.Context(), aq)
	writeList(s, w, p, err)
}

// readBody reads the request body up to limit bytes, into one allocation of the announced
// Content-Length when there is one (io.ReadAll grows from 512 bytes by doubling: a 40 KB batch
// cost it eight allocations and twice its size). The decoded events keep slices of it.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	rd := http.MaxBytesReader(w, r.Body, limit)
	if n := r.ContentLength; n > 0 && n <= limit {
		buf := make([]byte, n+1) // one byte more, to see the end without growing
		k, err := io.ReadFull(rd, buf)
		switch {
		case int64(k) == n && (err == io.ErrUnexpectedEOF || err == io.EOF):
			return buf[:k], nil // all of it
		case err == nil:
		case int64(k) < n && (err == io.ErrUnexpectedEOF || err == io.EOF):
			return nil, io.ErrUnexpectedEOF // the client went away before the end
		default:
			return nil, err
		}
		// More than announced cannot happen with net/http (it stops at Content-Length); read on
		// anyway for correctness.
		rest, err := io.ReadAll(rd)
		return append(buf, rest...), err
	}
	return io.ReadAll(rd)
}
