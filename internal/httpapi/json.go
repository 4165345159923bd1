package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/pipewarden/pipewarden/internal/event"
)

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

// apiError is the body of every error response.
type apiError struct {
	Error  string       `json:"error"`
	Events []eventError `json:"events,omitempty"`
}

type eventError struct {
	Index  int    `json:"index"`
	ID     string `json:"id,omitempty"`
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, apiError{Error: msg})
}

// statusWriter remembers the status code for metrics.
type statusWriter struct {
	http.ResponseWriter
	code    int
	written bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.written {
		w.code, w.written = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.written = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func statusLabel(code int) string { return strconv.Itoa(code) }

// writeAccepted answers an ingest with 202 and the ids, byte for byte what writeJSON gives for
// {"accepted": n, "ids": ids}, without reflection, and with a Content-Length so that even a
// large batch's answer goes out in one piece rather than chunked.
func writeAccepted(w http.ResponseWriter, evs []event.Event) {
	b := make([]byte, 0, 32+len(evs)*40)
	b = append(b, `{"accepted":`...)
	b = strconv.AppendInt(b, int64(len(evs)), 10)
	b = append(b, `,"ids":[`...)
	for i := range evs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, evs[i].ID)
	}
	b = append(b, "]}\n"...)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(b)
}

// appendJSONString appends s as encoding/json writes it (HTML characters escaped).
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
