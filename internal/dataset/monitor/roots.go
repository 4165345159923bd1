package monitor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrOutsideRoots is wrapped by errors about a batch path that is not inside a data root, or
// that leaves one through ".." or a symlink.
var ErrOutsideRoots = errors.New("path is outside the configured data roots")

// root is one configured data directory. Files are opened through an os.Root, which refuses
// any name that resolves outside it (symlinks included) at the moment of opening, so a symlink
// swapped in after the check below still cannot escape.
type root struct {
	path string // as configured, cleaned
	real string // with symlinks resolved
	r    *os.Root
}

func openRoots(paths []string) ([]root, error) {
	var out []root
	for i, p := range paths {
		p = filepath.Clean(p)
		r, err := os.OpenRoot(p)
		if err != nil {
			for _, o := range out {
				o.r.Close()
			}
			return nil, fmt.Errorf("data.roots[%d]: %w", i, err)
		}
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			real = p
		}
		out = append(out, root{path: p, real: real, r: r})
	}
	return out, nil
}

// inside returns p relative to dir when p is dir or below it.
func inside(dir, p string) (string, bool) {
	rel, err := filepath.Rel(dir, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false
	}
	return rel, true
}

// openBatch opens the file a batch event names: an absolute path inside a root, or a path
// relative to the first root that holds it. It must be a regular file of at most
// MaxFileBytes.
func (m *Monitor) openBatch(p string) (*os.File, error) {
	if len(m.roots) == 0 {
		return nil, fmt.Errorf("%w: no data roots are configured (data.roots), so batch paths are refused", ErrOutsideRoots)
	}
	if p == "" || strings.ContainsRune(p, 0) {
		return nil, fmt.Errorf("%w: empty or malformed path", ErrOutsideRoots)
	}
	clean := filepath.Clean(p)
	abs := filepath.IsAbs(clean)
	if !abs && (clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator))) {
		return nil, fmt.Errorf("%w: %q climbs out with ..", ErrOutsideRoots, p)
	}
	for _, rt := range m.roots {
		rel := clean
		if abs {
			var ok bool
			if rel, ok = inside(rt.path, clean); !ok {
				if rel, ok = inside(rt.real, clean); !ok {
					continue
				}
			}
		}
		full := filepath.Join(rt.real, rel)
		resolved, err := filepath.EvalSymlinks(full)
		if errors.Is(err, fs.ErrNotExist) && !abs {
			continue // a relative path may live in a later root
		}
		if err != nil {
			return nil, err
		}
		target, ok := inside(rt.real, resolved)
		if !ok {
			return nil, fmt.Errorf("%w: %q resolves to %q through a symlink", ErrOutsideRoots, p, resolved)
		}
		// Open the resolved name: os.Root refuses absolute symlinks even when they point back
		// inside, and a symlink planted after this check is still refused if it escapes.
		f, err := rt.r.Open(target)
		if err != nil {
			return nil, err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		if !st.Mode().IsRegular() {
			f.Close()
			return nil, fmt.Errorf("%q is not a regular file", p)
		}
		if st.Size() > m.cfg.MaxFileBytes {
			f.Close()
			return nil, fmt.Errorf("%q is %d bytes, more than data.max_file_bytes (%d)", p, st.Size(), m.cfg.MaxFileBytes)
		}
		return f, nil
	}
	if abs {
		return nil, fmt.Errorf("%w: %q", ErrOutsideRoots, p)
	}
	return nil, fmt.Errorf("%q: %w in any data root", p, fs.ErrNotExist)
}
