package audit

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// MaxEntriesPage is the most records one GET /v1/audit/entries returns.
const MaxEntriesPage = 1000

// CheckpointJSON is the body of GET /v1/audit/checkpoint.
type CheckpointJSON struct {
	Origin   string    `json:"origin"`
	Size     int64     `json:"size"`
	RootHash string    `json:"root_hash"` // base64, as in the note
	Time     time.Time `json:"time,omitzero"`
	Note     string    `json:"note"` // the signed note; verify it, not the fields beside it
	Key      string    `json:"key"`  // the log's verifier key (pin it; do not trust it from here)
}

// EntriesJSON is the body of GET /v1/audit/entries.
type EntriesJSON struct {
	From    int64       `json:"from"`
	To      int64       `json:"to"` // exclusive; smaller than asked when the page was cut
	Size    int64       `json:"size"`
	Entries []EntryJSON `json:"entries"`
}

// EntryJSON is one record; Record is the exact bytes that were hashed (canonical JSON).
type EntryJSON struct {
	Index  int64           `json:"index"`
	Record json.RawMessage `json:"record"`
}

// ProofJSON is the body of the proof endpoints. Hashes are base64.
type ProofJSON struct {
	Index    *int64   `json:"index,omitempty"` // inclusion
	Size     int64    `json:"size,omitempty"`  // inclusion: the tree size
	From     int64    `json:"from,omitempty"`  // consistency
	To       int64    `json:"to,omitempty"`    // consistency
	RootHash string   `json:"root_hash,omitempty"`
	FromRoot string   `json:"from_root,omitempty"`
	ToRoot   string   `json:"to_root,omitempty"`
	Proof    []string `json:"proof"`
}

// Handler serves the read side of the log: GET /v1/audit/checkpoint, /v1/audit/entries,
// /v1/audit/proof/inclusion and /v1/audit/proof/consistency. Bad input is a 400 with
// {"error": "..."}. Authentication is the caller's (mount it behind the viewer role).
func Handler(l *Log) http.Handler {
	h := &handler{l: l}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/audit/checkpoint", h.checkpoint)
	mux.HandleFunc("GET /v1/audit/entries", h.entries)
	mux.HandleFunc("GET /v1/audit/proof/inclusion", h.inclusion)
	mux.HandleFunc("GET /v1/audit/proof/consistency", h.consistency)
	return mux
}

type handler struct{ l *Log }

func (h *handler) checkpoint(w http.ResponseWriter, r *http.Request) {
	c, ok := h.l.Latest()
	if !ok {
		writeError(w, http.StatusNotFound, "no checkpoint yet: the log is empty")
		return
	}
	writeJSON(w, http.StatusOK, CheckpointJSON{
		Origin: c.Origin, Size: c.Size, RootHash: b64(c.Hash), Time: c.Time, Note: string(c.Note), Key: h.l.PublicKey(),
	})
}

func (h *handler) entries(w http.ResponseWriter, r *http.Request) {
	size := h.l.Size()
	from, err := intParam(r, "from", -1)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	to, err := intParam(r, "to", min(from+MaxEntriesPage, size))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if from > size || to < from {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("from=%d to=%d: want 0 <= from <= to, from <= %d (the log size)", from, to, size))
		return
	}
	to = min(to, size, from+MaxEntriesPage)
	es, err := h.l.Entries(from, to)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	out := EntriesJSON{From: from, To: to, Size: size, Entries: make([]EntryJSON, len(es))}
	for i, e := range es {
		out.Entries[i] = EntryJSON{Index: e.Index, Record: e.Raw}
	}
	writeJSON(w, http.StatusOK, out)
}

// defaultSize is the latest checkpoint's size: proofs are most useful against a signed root.
func (h *handler) defaultSize() int64 {
	if c, ok := h.l.Latest(); ok {
		return c.Size
	}
	return -1
}

func (h *handler) inclusion(w http.ResponseWriter, r *http.Request) {
	index, err := intParam(r, "index", -1)
	if err == nil {
		var size int64
		if size, err = intParam(r, "size", h.defaultSize()); err == nil {
			var p tlog.RecordProof
			if p, err = h.l.InclusionProof(index, size); err == nil {
				root, _ := h.l.TreeHash(size)
				writeJSON(w, http.StatusOK, ProofJSON{Index: &index, Size: size, RootHash: b64(root), Proof: hashes64(p)})
				return
			}
		}
	}
	writeError(w, http.StatusBadRequest, err.Error())
}

func (h *handler) consistency(w http.ResponseWriter, r *http.Request) {
	from, err := intParam(r, "from", -1)
	if err == nil {
		var to int64
		if to, err = intParam(r, "to", h.defaultSize()); err == nil {
			var p tlog.TreeProof
			if p, err = h.l.ConsistencyProof(from, to); err == nil {
				fr, _ := h.l.TreeHash(from)
				tr, _ := h.l.TreeHash(to)
				writeJSON(w, http.StatusOK, ProofJSON{From: from, To: to, FromRoot: b64(fr), ToRoot: b64(tr), Proof: hashes64(p)})
				return
			}
		}
	}
	writeError(w, http.StatusBadRequest, err.Error())
}

// intParam reads a non-negative integer query parameter; def < 0 makes it required.
func intParam(r *http.Request, name string, def int64) (int64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		if def < 0 {
			return 0, fmt.Errorf("query parameter %q is required", name)
		}
		return def, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("query parameter %s=%q: want a non-negative integer", name, s)
	}
	return v, nil
}

func b64(h tlog.Hash) string { return base64.StdEncoding.EncodeToString(h[:]) }

func hashes64(hs []tlog.Hash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = b64(h)
	}
	return out
}

func parseHashes64(ss []string) ([]tlog.Hash, error) {
	if len(ss) > 128 {
		return nil, fmt.Errorf("proof of %d hashes is too long", len(ss))
	}
	out := make([]tlog.Hash, len(ss))
	for i, s := range ss {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) != tlog.HashSize {
			return nil, fmt.Errorf("proof hash %d: not a base64 SHA-256 hash", i)
		}
		copy(out[i][:], b)
	}
	return out, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // records go out byte for byte as they were hashed
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
