package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// StateStore is the part of a Store that keeps named blobs.
type StateStore interface {
	PutState(ctx context.Context, key string, value []byte) error
	GetState(ctx context.Context, key string) ([]byte, error)
}

// StatePartSize is the most PutLargeState writes in one PutState call.
const StatePartSize = 256 << 10

// partPause is the pause between two parts of PutLargeState.
const partPause = time.Millisecond

// partsFormat marks a value written by PutLargeState as a manifest of parts.
const partsFormat = "pipewarden.state.parts/v1"

type partsManifest struct {
	Format string `json:"format"`
	Gen    string `json:"gen"` // "a" or "b": the parts' key prefix, alternating between writes
	Parts  int    `json:"parts"`
	Bytes  int    `json:"bytes"`
	SHA256 string `json:"sha256"`
}

func partKey(key, gen string, i int) string { return fmt.Sprintf("%s.%s.%06d", key, gen, i) }

// PutLargeState stores value under key in parts of at most StatePartSize, each its own
// PutState, so a store with one writer (SQLite) is never held by one large write and commits of
// events go in between; a rules snapshot of a few megabytes written at once held the writer for
// about 10 ms. The parts go under keys of the generation the current manifest does not name,
// and the manifest, written last, switches to them: a crash midway leaves the previous value
// readable. Parts of an older, longer value are emptied afterwards.
func PutLargeState(ctx context.Context, s StateStore, key string, value []byte) error {
	gen := "a"
	if m, err := readManifest(ctx, s, key); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	} else if m != nil && m.Gen == "a" {
		gen = "b"
	}
	parts := 0
	for off := 0; off < len(value) || parts == 0; off += StatePartSize {
		if parts > 0 {
			time.Sleep(partPause) // the writer's other callers go in between parts
		}
		end := min(off+StatePartSize, len(value))
		if err := s.PutState(ctx, partKey(key, gen, parts), value[off:end]); err != nil {
			return fmt.Errorf("state %s part %d: %w", key, parts, err)
		}
		parts++
	}
	sum := sha256.Sum256(value)
	m, err := json.Marshal(partsManifest{Format: partsFormat, Gen: gen, Parts: parts, Bytes: len(value), SHA256: hex.EncodeToString(sum[:])})
	if err != nil {
		return err
	}
	if err := s.PutState(ctx, key, m); err != nil {
		return fmt.Errorf("state %s manifest: %w", key, err)
	}
	for i := parts; ; i++ { // empty what an older, longer value of this generation left
		old, err := s.GetState(ctx, partKey(key, gen, i))
		if errors.Is(err, ErrNotFound) || (err == nil && len(old) == 0) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("state %s: read stale part %d: %w", key, i, err)
		}
		if err := s.PutState(ctx, partKey(key, gen, i), []byte{}); err != nil {
			return fmt.Errorf("state %s: empty stale part %d: %w", key, i, err)
		}
	}
}

// GetLargeState reads a value written by PutLargeState, or one written directly with PutState
// (an older daemon's), checking the parts against the manifest's length and SHA-256.
func GetLargeState(ctx context.Context, s StateStore, key string) ([]byte, error) {
	raw, err := s.GetState(ctx, key)
	if err != nil {
		return nil, err
	}
	m, ok := parseManifest(raw)
	if !ok {
		return raw, nil
	}
	if m.Parts < 1 || m.Bytes < 0 || m.Parts > m.Bytes/StatePartSize+1 || (m.Gen != "a" && m.Gen != "b") {
		return nil, fmt.Errorf("state %s: bad manifest (%d parts of %d bytes, generation %q)", key, m.Parts, m.Bytes, m.Gen)
	}
	out := make([]byte, 0, m.Bytes)
	for i := 0; i < m.Parts; i++ {
		p, err := s.GetState(ctx, partKey(key, m.Gen, i))
		if err != nil {
			return nil, fmt.Errorf("state %s part %d: %w", key, i, err)
		}
		if len(out)+len(p) > m.Bytes {
			return nil, fmt.Errorf("state %s: parts longer than the %d bytes of the manifest", key, m.Bytes)
		}
		out = append(out, p...)
	}
	sum := sha256.Sum256(out)
	if len(out) != m.Bytes || hex.EncodeToString(sum[:]) != m.SHA256 {
		return nil, fmt.Errorf("state %s: parts do not match the manifest (%d of %d bytes, or a different SHA-256)", key, len(out), m.Bytes)
	}
	return out, nil
}

func readManifest(ctx context.Context, s StateStore, key string) (*partsManifest, error) {
	raw, err := s.GetState(ctx, key)
	if err != nil {
		return nil, err
	}
	if m, ok := parseManifest(raw); ok {
		return &m, nil
	}
	return nil, nil
}

func parseManifest(raw []byte) (partsManifest, bool) {
	var m partsManifest
	if len(raw) > 1024 || !bytes.Contains(raw, []byte(partsFormat)) || json.Unmarshal(raw, &m) != nil || m.Format != partsFormat {
		return partsManifest{}, false
	}
	return m, true
}
