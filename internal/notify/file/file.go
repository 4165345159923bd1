// Package file appends notifications as JSON lines to a file, for SIEM collectors.
package file

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/pipewarden/pipewarden/internal/notify"
)

// Config configures a file receiver.
type Config struct {
	Path string `yaml:"path"`
}

// Line is one line of the file: the idempotency key and the message.
type Line struct {
	Key string `json:"key"`
	notify.Message
}

// tailBytes is how much of an existing file is read at start to learn the keys already written,
// so a notification re-sent after a crash is not appended twice.
const tailBytes = 4 << 20

// Notifier appends to one file.
type Notifier struct {
	path   string
	mu     sync.Mutex
	loaded bool
	seen   map[string]bool
}

// New returns a file notifier; the file is created on the first notification.
func New(c Config) *Notifier {
	return &Notifier{path: c.Path, seen: map[string]bool{}}
}

// Notify appends the message as one JSON line and syncs the file.
func (n *Notifier) Notify(ctx context.Context, key string, m *notify.Message) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.loaded {
		if err := n.load(); err != nil {
			return err
		}
		n.loaded = true
	}
	if key != "" && n.seen[key] {
		return nil
	}
	b, err := json.Marshal(Line{Key: key, Message: *m})
	if err != nil {
		return notify.Permanent(err)
	}
	if err := os.MkdirAll(filepath.Dir(n.path), 0o750); err != nil {
		return fmt.Errorf("file receiver %s: %w", n.path, err)
	}
	f, err := os.OpenFile(n.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("file receiver %s: %w", n.path, err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("file receiver %s: %w", n.path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("file receiver %s: %w", n.path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("file receiver %s: %w", n.path, err)
	}
	n.seen[key] = true
	return nil
}

func (n *Notifier) load() error {
	f, err := os.Open(n.path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("file receiver %s: %w", n.path, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > tailBytes {
		if _, err := f.Seek(-tailBytes, io.SeekEnd); err != nil {
			return err
		}
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var l struct {
			Key string `json:"key"`
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Key != "" {
			n.seen[l.Key] = true
		}
	}
	return nil
}
