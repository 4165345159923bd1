package modelwatch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// DefaultCASMaxBytes caps the content-addressed store when Options.CASMaxBytes is 0.
const DefaultCASMaxBytes = 64 << 30

// ErrCASFull is wrapped when keeping a model's files would take the content-addressed store over
// its cap.
var ErrCASFull = errors.New("content store full")

// cas is a content-addressed store of approved files: <root>/sha256/<hex digest>. A blob is
// written once whatever the number of files and versions that share its bytes, and never
// changed; blobs are read-only.
type cas struct {
	root     string // <data>/models/cas
	maxBytes int64
}

func (c *cas) path(digest string) string { return filepath.Join(c.root, "sha256", digest) }

func (c *cas) has(digest string) bool {
	fi, err := os.Stat(c.path(digest))
	return err == nil && fi.Mode().IsRegular()
}

// usage is the bytes held by the store.
func (c *cas) usage() (int64, error) {
	var n int64
	err := filepath.WalkDir(filepath.Join(c.root, "sha256"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("content store %s: %w", c.root, err)
	}
	return n, nil
}

// reserve checks that the files not yet stored fit under the cap. It returns the bytes they add.
func (c *cas) reserve(files []File) (int64, error) {
	var add int64
	seen := map[string]bool{}
	for _, f := range files {
		if !seen[f.SHA256] && !c.has(f.SHA256) {
			add += f.Size
		}
		seen[f.SHA256] = true
	}
	if add == 0 {
		return 0, nil
	}
	used, err := c.usage()
	if err != nil {
		return 0, err
	}
	if used+add > c.maxBytes {
		return 0, fmt.Errorf("%w: keeping this model adds %d bytes to the %d already in %s, over its cap of %d bytes (raise the cap, or approve a smaller model)",
			ErrCASFull, add, used, c.root, c.maxBytes)
	}
	return add, nil
}

// put stores the file at src under digest, checking that its bytes hash to digest (the file may
// have changed since it was hashed). It does nothing when the blob exists.
func (c *cas) put(src, digest string) error {
	dst := c.path(digest)
	if c.has(digest) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("content store: %w", err)
	}
	tmp := fmt.Sprintf("%s.tmp-%d", dst, os.Getpid())
	os.Remove(tmp)
	got, _, err := copyFile(tmp, src, 0o444)
	if err != nil {
		return fmt.Errorf("content store: %w", err)
	}
	if got != digest {
		os.Remove(tmp)
		return fmt.Errorf("%w %s: it changed while it was being approved (sha256 %s, hashed as %s): approve again once it is stable", ErrInvalidModel, src, got, digest)
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("content store: %w", err)
	}
	return syncDir(filepath.Dir(dst))
}
