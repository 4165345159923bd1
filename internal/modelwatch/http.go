package modelwatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/signing"
)

// Auditor records what the API did (approvals, rollbacks) in the audit log.
type Auditor interface {
	Audit(ctx context.Context, action string, record any) error
}

// HandlerOptions configure the models API.
type HandlerOptions struct {
	Manager *Manager
	// Watcher, when set, adds the watch state to GET /v1/models; otherwise the status file is read.
	Watcher *Watcher
	// Verifier is the trust for signatures given with approvals; without it a signed approval is
	// refused.
	Verifier signing.Verifier
	// AllowedRoots, when not empty, restrict approvals to directories at or under one of them
	// (typically the watched model directories).
	AllowedRoots []string
	// Principal names who is calling (the authenticated API principal), recorded as the approver.
	Principal func(*http.Request) string
	// Reporter, when set, receives the registered event of each approval and the finding of a
	// rollback that could not be verified.
	Reporter Reporter
	Auditor  Auditor
	Logger   *slog.Logger
}

// Handler serves GET /v1/models, POST /v1/models/{name}/approvals and
// POST /v1/models/{name}/rollback. It does no authentication: mount it behind the API's auth.
type Handler struct {
	o   HandlerOptions
	mux *http.ServeMux
}

// Route patterns of the handler, for the daemon to mount with its auth.
const (
	RouteList     = "GET /v1/models"
	RouteApprove  = "POST /v1/models/{name}/approvals"
	RouteRollback = "POST /v1/models/{name}/rollback"
)

// maxRequestBytes bounds an approval request body.
const maxRequestBytes = 64 << 10

// NewHandler builds the handler.
func NewHandler(o HandlerOptions) *Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{o: o, mux: http.NewServeMux()}
	h.mux.HandleFunc(RouteList, h.list)
	h.mux.HandleFunc(RouteApprove, h.approve)
	h.mux.HandleFunc(RouteRollback, h.rollback)
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// ApproveBody is the request of POST /v1/models/{name}/approvals. Paths are on the daemon's host.
type ApproveBody struct {
	Path        string   `json:"path"`
	Signature   string   `json:"signature,omitempty"` // the OMS signature file
	IgnorePaths []string `json:"ignore_paths,omitempty"`
}

// ApprovalView is an approval without its file list and signature bytes, as the API shows it.
type ApprovalView struct {
	Model       string    `json:"model"`
	Version     int       `json:"version"`
	Path        string    `json:"path"`
	Approver    string    `json:"approver"`
	Time        time.Time `json:"time"`
	Digest      string    `json:"digest"`
	Files       int       `json:"files"`
	Bytes       int64     `json:"bytes"`
	Signed      bool      `json:"signed"`
	Signer      string    `json:"signer,omitempty"`
	IgnorePaths []string  `json:"ignore_paths,omitempty"`
}

// View summarizes the approval.
func (a *Approval) View() ApprovalView {
	v := ApprovalView{Model: a.Model, Version: a.Version, Path: a.Path, Approver: a.Approver, Time: a.Time,
		Digest: a.Digest, Files: len(a.Files), Signed: a.Signed(), Signer: a.Signer, IgnorePaths: a.IgnorePaths}
	for _, f := range a.Files {
		v.Bytes += f.Size
	}
	return v
}

// ModelView is one model in GET /v1/models.
type ModelView struct {
	Name     string        `json:"name"`
	Latest   *ApprovalView `json:"latest,omitempty"`
	Versions int           `json:"versions"`
	Watch    *ModelStatus  `json:"watch,omitempty"`
	Error    string        `json:"error,omitempty"`
}

// ModelList is the response of GET /v1/models.
type ModelList struct {
	Models []ModelView `json:"models"`
}

// List is every approved or watched model with its latest approval and watch state.
func List(m *Manager, statuses []ModelStatus) ModelList {
	byName := map[string]*ModelView{}
	var order []string
	view := func(n string) *ModelView {
		if v := byName[n]; v != nil {
			return v
		}
		byName[n] = &ModelView{Name: n}
		order = append(order, n)
		return byName[n]
	}
	names, err := m.Models()
	if err != nil {
		names = nil
	}
	for _, n := range names {
		v := view(n)
		h, err := m.History(n)
		switch {
		case errors.Is(err, ErrNotApproved):
		case err != nil:
			v.Error = err.Error()
		default:
			lv := h.Latest().View()
			v.Latest, v.Versions = &lv, len(h.Versions)
		}
	}
	for i := range statuses {
		view(statuses[i].Name).Watch = &statuses[i]
	}
	out := ModelList{Models: []ModelView{}}
	for _, n := range order {
		out.Models = append(out.Models, *byName[n])
	}
	return out
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	var st []ModelStatus
	if h.o.Watcher != nil {
		st = h.o.Watcher.Statuses()
	} else if s, err := h.o.Manager.Status(); err == nil && s != nil {
		st = s.Models
	}
	writeJSON(w, http.StatusOK, List(h.o.Manager, st))
}

func (h *Handler) approve(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := ValidName(name); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var body ApproveBody
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "approval request: "+err.Error())
		return
	}
	if body.Path == "" || !filepath.IsAbs(body.Path) {
		writeError(w, http.StatusBadRequest, `approval request: "path" must be the absolute path of the model directory on the daemon's host`)
		return
	}
	dir := filepath.Clean(body.Path)
	if !h.allowed(dir) {
		writeError(w, http.StatusForbidden, fmt.Sprintf("model directory %s is not under a configured model directory", dir))
		return
	}
	req := ApproveRequest{Name: name, Path: dir, IgnorePaths: body.IgnorePaths}
	if h.o.Principal != nil {
		req.Approver = h.o.Principal(r)
	}
	if body.Signature != "" {
		if h.o.Verifier == nil {
			writeError(w, http.StatusBadRequest, "approval request: a signature was given but no signature trust (key or certificate chain) is configured")
			return
		}
		sig, err := readLimited(body.Signature, signing.MaxBundleSize)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("signature %s: %v", body.Signature, err))
			return
		}
		ign, err := signing.ResolveIgnorePaths(dir, []string{body.Signature})
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		req.Signature, req.Verifier, req.IgnorePaths = sig, h.o.Verifier, append(req.IgnorePaths, ign...)
	}
	a, err := h.o.Manager.Approve(r.Context(), req)
	var se *SignatureError
	switch {
	case errors.As(err, &se):
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": err.Error(), "findings": se.Result.Findings()})
		return
	case errors.Is(err, ErrCASFull):
		writeError(w, http.StatusInsufficientStorage, err.Error())
		return
	case errors.Is(err, ErrInvalidModel):
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission):
		writeError(w, http.StatusBadRequest, err.Error())
		return
	case err != nil:
		h.o.Logger.Error("approve model", "model", name, "err", err)
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	view := a.View()
	h.audit(r.Context(), "model.approve", view)
	if h.o.Reporter != nil {
		if ev, err := ApprovalEvent(a); err == nil {
			if err := h.o.Reporter.Report(r.Context(), []event.Event{ev}, nil); err != nil {
				h.o.Logger.Error("approve model: report", "model", name, "err", err)
			}
		}
	}
	writeJSON(w, http.StatusCreated, view)
}

func (h *Handler) rollback(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := ValidName(name); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	res, err := h.o.Manager.Rollback(r.Context(), name)
	switch {
	case errors.Is(err, ErrNotApproved):
		writeError(w, http.StatusNotFound, err.Error())
		return
	case res == nil && err != nil:
		h.o.Logger.Error("rollback model", "model", name, "err", err)
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	h.audit(r.Context(), "model.rollback", res)
	if fs := res.Findings(); len(fs) > 0 && h.o.Reporter != nil {
		if err := h.o.Reporter.Report(r.Context(), nil, fs); err != nil {
			h.o.Logger.Error("rollback model: report", "model", name, "err", err)
		}
	}
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]any{"error": err.Error(), "result": res})
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (h *Handler) allowed(dir string) bool {
	if len(h.o.AllowedRoots) == 0 {
		return true
	}
	for _, root := range h.o.AllowedRoots {
		root = filepath.Clean(root)
		if dir == root || relUnder(root, dir) != "" {
			return true
		}
	}
	return false
}

func (h *Handler) audit(ctx context.Context, action string, v any) {
	if h.o.Auditor == nil {
		return
	}
	if err := h.o.Auditor.Audit(ctx, action, v); err != nil {
		h.o.Logger.Error("audit", "action", action, "err", err)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
