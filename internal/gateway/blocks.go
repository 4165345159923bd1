package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/pipewarden/pipewarden/internal/finding"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Block stops one client until Until (zero: until removed).
type Block struct {
	Client  string    `json:"client"`
	Reason  string    `json:"reason,omitempty"`
	Source  string    `json:"source"` // manual, auto (escalation), response (alerting pipeline)
	Rule    string    `json:"rule,omitempty"`
	Created time.Time `json:"created"`
	Until   time.Time `json:"until,omitzero"`
}

// Blocks is the gateway's block list, kept in memory and, when the gateway has a data
// directory, in a state file rewritten atomically on every change so blocks survive restarts.
type Blocks struct {
	mu       sync.RWMutex
	m        map[string]Block
	path     string
	now      func() time.Time
	onChange func(b Block, added bool)
}

// ErrInvalidBlock is a block without a client or with an expiry in the past.
var ErrInvalidBlock = errors.New("invalid block")

const blocksFile = "gateway-blocks.json"

func openBlocks(dir string, now func() time.Time) (*Blocks, error) {
	b := &Blocks{m: map[string]Block{}, now: now}
	if dir == "" {
		return b, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("gateway data dir %q: %w", dir, err)
	}
	b.path = filepath.Join(dir, blocksFile)
	raw, err := os.ReadFile(b.path)
	if errors.Is(err, os.ErrNotExist) {
		return b, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read block list %q: %w", b.path, err)
	}
	var st struct {
		Blocks []Block `json:"blocks"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("read block list %q: %w (fix or remove the file)", b.path, err)
	}
	for _, x := range st.Blocks {
		b.m[x.Client] = x
	}
	return b, nil
}

// Active returns the client's block if it has one that has not expired.
func (b *Blocks) Active(client string) (Block, bool) {
	b.mu.RLock()
	x, ok := b.m[client]
	b.mu.RUnlock()
	if !ok || (!x.Until.IsZero() && !b.now().Before(x.Until)) {
		return Block{}, false
	}
	return x, true
}

// List returns the active blocks, sorted by client.
func (b *Blocks) List() []Block {
	now := b.now()
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]Block, 0, len(b.m))
	for _, x := range b.m {
		if x.Until.IsZero() || now.Before(x.Until) {
			out = append(out, x)
		}
	}
	slices.SortFunc(out, func(a, c Block) int { return strings.Compare(a.Client, c.Client) })
	return out
}

// Add blocks a client, replacing any block it had, and stores the list.
func (b *Blocks) Add(x Block) (Block, error) {
	now := b.now()
	x.Client = strings.TrimSpace(x.Client)
	if x.Client == "" {
		return Block{}, fmt.Errorf("%w: client is required", ErrInvalidBlock)
	}
	if !x.Until.IsZero() && !now.Before(x.Until) {
		return Block{}, fmt.Errorf("%w: until %s is not in the future", ErrInvalidBlock, x.Until.Format(time.RFC3339))
	}
	if x.Source == "" {
		x.Source = "manual"
	}
	x.Created = now
	b.mu.Lock()
	b.m[x.Client] = x
	b.prune(now)
	err := b.save()
	cb := b.onChange
	b.mu.Unlock()
	if cb != nil {
		cb(x, true)
	}
	return x, err
}

// Remove unblocks a client; it reports whether the client was blocked.
func (b *Blocks) Remove(client string) (bool, error) {
	b.mu.Lock()
	x, ok := b.m[client]
	delete(b.m, client)
	var err error
	if ok {
		err = b.save()
	}
	cb := b.onChange
	b.mu.Unlock()
	if ok && cb != nil {
		cb(x, false)
	}
	return ok, err
}

func (b *Blocks) prune(now time.Time) {
	for k, x := range b.m {
		if !x.Until.IsZero() && !now.Before(x.Until) {
			delete(b.m, k)
		}
	}
}

// save writes the state file through a temporary file and a rename; b.mu is held.
func (b *Blocks) save() error {
	if b.path == "" {
		return nil
	}
	list := make([]Block, 0, len(b.m))
	for _, x := range b.m {
		list = append(list, x)
	}
	slices.SortFunc(list, func(a, c Block) int { return strings.Compare(a.Client, c.Client) })
	raw, err := json.MarshalIndent(map[string]any{"blocks": list}, "", " ")
	if err != nil {
		return err
	}
	tmp := b.path + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return fmt.Errorf("write block list %q: %w", tmp, err)
	}
	if err := os.Rename(tmp, b.path); err != nil {
		return fmt.Errorf("write block list %q: %w", b.path, err)
	}
	return nil
}

// blockFinding records a change of the block list, for the audit trail.
func blockFinding(b Block, added bool, now time.Time) finding.Finding {
	action, title := "blocked", "Client blocked"
	if !added {
		action, title = "unblocked", "Client unblocked"
	}
	ev := map[string]any{"source": b.Source, "created": b.Created}
	if !b.Until.IsZero() {
		ev["until"] = b.Until
	}
	if b.Rule != "" {
		ev["cause_rule"] = b.Rule
	}
	if b.Reason != "" {
		ev["reason"] = b.Reason
		title += ": " + b.Reason
	}
	return finding.Finding{
		Rule: "gateway.response." + action, Severity: finding.Info, Title: title,
		Subject:  finding.Subject{Kind: "client", Name: b.Client},
		Labels:   map[string]string{"client": b.Client, "action": action, "source": b.Source},
		Evidence: ev, Confidence: 1, Time: now,
	}
}
