package alert

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/pipewarden/pipewarden/internal/store"
)

// APIRoute is one HTTP route of the alerting API: a stdlib mux pattern, the least role allowed
// (viewer or responder; admin may do everything) and its handler. The daemon registers them
// with its authentication.
type APIRoute struct {
	Pattern string
	Role    string
	Handler http.HandlerFunc
}

// maxBody bounds request bodies of the alerting API.
const maxBody = 64 << 10

// Handlers returns the alerting API's routes. actor names who made a request (for histories,
// silences and the audit log).
func (p *Pipeline) Handlers(actor func(*http.Request) string) []APIRoute {
	h := &handlers{p: p, actor: actor}
	v, r := store.RoleViewer, store.RoleResponder
	return []APIRoute{
		{"GET /v1/alerts/{id}", v, h.getAlert},
		{"POST /v1/alerts/{id}/ack", r, h.transition(ActionAck)},
		{"POST /v1/alerts/{id}/resolve", r, h.transition(ActionResolve)},
		{"POST /v1/alerts/{id}/false-positive", r, h.transition(ActionFalsePositive)},
		{"GET /v1/silences", v, h.getSilences},
		{"POST /v1/silences", r, h.postSilence},
		{"DELETE /v1/silences/{id}", r, h.deleteSilence},
		{"GET /v1/actions", v, h.getActions},
		{"POST /v1/actions/{id}/approve", r, h.approve},
		{"GET /v1/deployments/status", v, h.deployments},
		{"POST /v1/deployments/resume", r, h.resume},
		{"GET /v1/alerting/status", v, h.status},
		{"GET /v1/alerting/feedback", v, h.feedback},
	}
}

type handlers struct {
	p     *Pipeline
	actor func(*http.Request) string
}

func (h *handlers) who(r *http.Request) string {
	if h.actor == nil {
		return "api"
	}
	if a := h.actor(r); a != "" {
		return a
	}
	return "api"
}

func (h *handlers) getAlert(w http.ResponseWriter, r *http.Request) {
	a, err := h.p.Alert(r.Context(), r.PathValue("id"))
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// commentBody is the optional body of ack and resolve, required for false-positive.
type commentBody struct {
	Comment string `json:"comment"`
}

func (h *handlers) transition(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var b commentBody
		if err := readJSON(r, &b, true); err != nil {
			writeErr(w, err)
			return
		}
		a, err := h.p.Transition(r.Context(), r.PathValue("id"), action, h.who(r), b.Comment)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, a)
	}
}

func (h *handlers) getSilences(w http.ResponseWriter, r *http.Request) {
	state := r.URL.Query().Get("state")
	switch state {
	case "", "pending", "active", "expired":
	default:
		writeJSON(w, http.StatusBadRequest, errBody{"state must be pending, active or expired"})
		return
	}
	ss, err := h.p.Silences(r.Context(), state)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": ss})
}

func (h *handlers) postSilence(w http.ResponseWriter, r *http.Request) {
	var req SilenceRequest
	if err := readJSON(r, &req, false); err != nil {
		writeErr(w, err)
		return
	}
	s, err := h.p.AddSilence(r.Context(), req, h.who(r))
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, SilenceView{Silence: s, State: SilenceState(s, h.p.now())})
}

func (h *handlers) deleteSilence(w http.ResponseWriter, r *http.Request) {
	s, err := h.p.ExpireSilence(r.Context(), r.PathValue("id"), h.who(r))
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, SilenceView{Silence: s, State: SilenceState(s, h.p.now())})
}

func (h *handlers) getActions(w http.ResponseWriter, r *http.Request) {
	as, err := h.p.st.ListActions(r.Context(), r.URL.Query().Get("status"))
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": as})
}

func (h *handlers) approve(w http.ResponseWriter, r *http.Request) {
	a, err := h.p.ApproveAction(r.Context(), r.PathValue("id"), h.who(r))
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func (h *handlers) deployments(w http.ResponseWriter, r *http.Request) {
	d, err := h.p.resp.Deployments(r.Context())
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (h *handlers) resume(w http.ResponseWriter, r *http.Request) {
	if err := h.p.resp.ResumeDeployments(r.Context(), h.who(r)); err != nil {
		writeErr(w, err)
		return
	}
	h.deployments(w, r)
}

func (h *handlers) status(w http.ResponseWriter, r *http.Request) {
	s, err := h.p.Stats(r.Context())
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (h *handlers) feedback(w http.ResponseWriter, r *http.Request) {
	min := 3
	if v := r.URL.Query().Get("min"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000000 {
			writeJSON(w, http.StatusBadRequest, errBody{"min must be a positive integer"})
			return
		}
		min = n
	}
	f, err := h.p.Feedback(r.Context(), min)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, f)
}

type errBody struct {
	Error string `json:"error"`
}

// readJSON decodes a bounded body strictly; an empty body is allowed when optional.
func readJSON(r *http.Request, v any, optional bool) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return errors.Join(ErrInvalid, err)
	}
	if len(b) > maxBody {
		return errors.Join(ErrInvalid, errors.New("request body larger than 64 KiB"))
	}
	if len(b) == 0 && optional {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errors.Join(ErrInvalid, errors.New("request body: "+err.Error()))
	}
	return nil
}

func writeErr(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, ErrInvalid):
		code = http.StatusBadRequest
	case errors.Is(err, ErrTransition):
		code = http.StatusConflict
	}
	writeJSON(w, code, errBody{err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
