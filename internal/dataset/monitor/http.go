package monitor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/pipewarden/pipewarden/internal/dataset"
)

// Routes are the patterns Handler serves, for the API to mount behind its authentication
// (POST needs the ingest or admin role, GET the viewer role).
func Routes() []string {
	return []string{"POST /v1/datasets/{name}/baseline", "GET /v1/datasets"}
}

// Handler serves:
//
//	POST /v1/datasets/{name}/baseline  body: a baseline written by 'pipewarden data profile'
//	                                   201 {dataset status}; 400 bad name, corrupted or
//	                                   other-version baseline; 409 managed by the config;
//	                                   413 over data.max_baseline_bytes
//	GET  /v1/datasets                  200 {"datasets": [...], "streams": {...}}
//
// Errors are JSON {"error": "..."}. The handler does no authentication.
func (m *Monitor) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/datasets/{name}/baseline", m.handleRegister)
	mux.HandleFunc("GET /v1/datasets", m.handleList)
	return mux
}

func (m *Monitor) handleRegister(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, m.cfg.MaxBaselineBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("baseline for %q is larger than data.max_baseline_bytes (%d bytes)", name, tooBig.Limit))
			return
		}
		writeError(w, http.StatusBadRequest, fmt.Sprintf("read baseline for %q: %v", name, err))
		return
	}
	if err := m.Register(name, body); err != nil {
		status := http.StatusInternalServerError
		switch {
		case errors.Is(err, ErrInvalidName), errors.Is(err, dataset.ErrBaselineCorrupt), errors.Is(err, dataset.ErrBaselineVersion):
			status = http.StatusBadRequest
		case errors.Is(err, ErrConfigManaged):
			status = http.StatusConflict
		}
		writeError(w, status, err.Error())
		return
	}
	for _, d := range m.Datasets() {
		if d.Name == name {
			writeJSON(w, http.StatusCreated, d)
			return
		}
	}
}

func (m *Monitor) handleList(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"datasets": m.Datasets(), "streams": m.Streams(), "untracked_batches": m.Untracked()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
