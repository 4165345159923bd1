package modelwatch

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"time"
)

// Model states in the status file.
const (
	StateApproved    = "approved"
	StateChanged     = "changed"
	StateNotApproved = "not-approved"
)

// ModelStatus is what the watcher last saw of one model.
type ModelStatus struct {
	Name              string     `json:"name"`
	Path              string     `json:"path"`
	State             string     `json:"state,omitempty"` // approved, changed, not-approved; empty before the first check
	ApprovedVersion   int        `json:"approved_version,omitempty"`
	ApprovedDigest    string     `json:"approved_digest,omitempty"`
	Deviation         *Deviation `json:"deviation,omitempty"`
	SignatureRequired bool       `json:"signature_required"`
	Signer            string     `json:"signer,omitempty"`
	Watching          bool       `json:"watching"` // inotify watches are in place
	Watches           int        `json:"inotify_watches"`
	LastCheck         time.Time  `json:"last_check"`
	LastFullHash      time.Time  `json:"last_full_hash"`
	Error             string     `json:"error,omitempty"`
}

// WatchStatus is <data>/models/status.json, written by the watcher after each check.
type WatchStatus struct {
	Updated time.Time     `json:"updated"`
	PID     int           `json:"pid"`
	Models  []ModelStatus `json:"models"`
}

const maxStatusBytes = 64 << 20

func (m *Manager) statusPath() string { return filepath.Join(m.dir, "status.json") }

// Status returns what the watcher last wrote; nil without error when no watcher ever ran.
func (m *Manager) Status() (*WatchStatus, error) {
	b, err := readLimited(m.statusPath(), maxStatusBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("watch status: %w", err)
	}
	var s WatchStatus
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("watch status %s: %w", m.statusPath(), err)
	}
	return &s, nil
}

// Statuses is the state of every watched model after the last check; safe to call while Run
// runs.
func (w *Watcher) Statuses() []ModelStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.snapshot)
}

func (w *Watcher) writeStatus() {
	snap := make([]ModelStatus, 0, len(w.models))
	for _, m := range w.models {
		snap = append(snap, m.status)
	}
	w.mu.Lock()
	w.snapshot = snap
	w.mu.Unlock()
	s := WatchStatus{Updated: w.o.Now().UTC(), PID: pid(), Models: snap}
	b, err := json.MarshalIndent(s, "", "  ")
	if err == nil {
		err = writeFileAtomic(w.o.Manager.statusPath(), append(b, '\n'), 0o640)
	}
	if err != nil {
		w.o.Logger.Warn("model watcher: write status", "err", err)
	}
}
