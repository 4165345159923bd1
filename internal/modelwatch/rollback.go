package modelwatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pipewarden/pipewarden/internal/signing"
)

// ErrRollbackUnverified is wrapped when the restored model does not match its approval (something
// wrote to it during the rollback, or the content store was damaged).
var ErrRollbackUnverified = errors.New("restored model does not match its approval")

// FileChange is a file whose bytes differ from the approved ones.
type FileChange struct {
	Name     string `json:"name"`
	Expected string `json:"expected_sha256"`
	Actual   string `json:"actual_sha256"`
}

// Deviation is how a model directory differs from its approved version.
type Deviation struct {
	Changed      []FileChange `json:"changed,omitempty"`
	Missing      []string     `json:"missing,omitempty"`
	Extra        []string     `json:"extra,omitempty"`
	Unverifiable []string     `json:"unverifiable,omitempty"` // could not be hashed: unreadable, symlink, special file
	// RootMissing is set when the model directory itself is gone.
	RootMissing bool `json:"root_missing,omitempty"`
}

// Empty reports whether the model matches its approval.
func (d *Deviation) Empty() bool {
	return len(d.Changed) == 0 && len(d.Missing) == 0 && len(d.Extra) == 0 && len(d.Unverifiable) == 0 && !d.RootMissing
}

// Files names every file that deviates, sorted.
func (d *Deviation) Files() []string {
	var out []string
	for _, c := range d.Changed {
		out = append(out, c.Name)
	}
	out = append(append(append(out, d.Missing...), d.Extra...), d.Unverifiable...)
	slices.Sort(out)
	return slices.Compact(out)
}

// deviation compares an approval with a manifest of the files on disk (and what could not be hashed).
func deviation(a *Approval, actual *signing.Manifest, problems []signing.PathProblem) Deviation {
	var d Deviation
	diff := signing.Diff(a.Manifest(), actual)
	d.Missing, d.Extra = diff.Missing, diff.Extra
	for _, c := range diff.Changed {
		fc := FileChange{Name: c.File}
		if len(c.Expected) > 0 {
			fc.Expected = fmt.Sprintf("%x", c.Expected[0].Digest)
		}
		if len(c.Actual) > 0 {
			fc.Actual = fmt.Sprintf("%x", c.Actual[0].Digest)
		}
		d.Changed = append(d.Changed, fc)
	}
	for _, p := range problems {
		d.Unverifiable = append(d.Unverifiable, p.Name)
	}
	// An unreadable approved file is reported as unverifiable, not also as missing.
	d.Missing = slices.DeleteFunc(d.Missing, func(n string) bool { return slices.Contains(d.Unverifiable, n) })
	return d
}

// Check hashes the model's directory and compares it with the last approved version.
func (m *Manager) Check(ctx context.Context, name string) (*Approval, Deviation, error) {
	a, err := m.Latest(name)
	if err != nil {
		return nil, Deviation{}, err
	}
	d, err := m.check(ctx, a)
	return a, d, err
}

func (m *Manager) check(ctx context.Context, a *Approval) (Deviation, error) {
	man, err := signing.ComputeManifest(ctx, a.Path, signing.Options{IgnorePaths: a.IgnorePaths, Workers: m.opts.Workers})
	var te *signing.TreeError
	switch {
	case errors.As(err, &te):
		return deviation(a, man, te.Problems), nil
	case err != nil && errors.Is(err, fs.ErrNotExist):
		d := deviation(a, &signing.Manifest{}, nil)
		d.RootMissing = true
		return d, nil
	case err != nil:
		if ctx.Err() != nil {
			return Deviation{}, ctx.Err()
		}
		return Deviation{Unverifiable: []string{"."}}, nil // the root cannot be read at all
	}
	return deviation(a, man, nil), nil
}

// RollbackResult is what a rollback did, for the audit log.
type RollbackResult struct {
	Model   string    `json:"model"`
	Path    string    `json:"path"`
	Version int       `json:"version"` // the approved version restored
	Digest  string    `json:"digest"`
	Time    time.Time `json:"time"`
	// AlreadyApproved is set when the model matched its approval and nothing was done.
	AlreadyApproved bool `json:"already_approved"`
	// Found is how the model deviated before the rollback.
	Found Deviation `json:"found"`
	// Quarantine is the directory that holds the tampered model tree as it was (tree/) and this
	// record (rollback.json).
	Quarantine  string   `json:"quarantine,omitempty"`
	Quarantined []string `json:"quarantined,omitempty"` // the deviating files kept there
	// Verified is set when the model was re-hashed after the rollback and matched its approval.
	Verified bool `json:"verified"`
	// Remaining is how the model still deviates when Verified is false.
	Remaining  *Deviation `json:"remaining,omitempty"`
	DurationMS float64    `json:"duration_ms"`
}

// Rollback restores the last approved version of a model. The approved files are written from the
// content-addressed store into a new directory beside the model (same file system), synced, and
// swapped with the model directory in one atomic rename (renameat2 RENAME_EXCHANGE), so readers
// see the old tree or the new one, never a mix. The tampered tree is moved into
// <data>/models/quarantine/<time>-<name>/tree as evidence; nothing is deleted. Paths the approval
// ignores (.git, ignore paths) are carried over. The result is verified by re-hashing. A model that
// already matches is left alone, so rollback is idempotent.
func (m *Manager) Rollback(ctx context.Context, name string) (*RollbackResult, error) {
	start := time.Now()
	a, err := m.Latest(name)
	if err != nil {
		return nil, err
	}
	unlock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	res := &RollbackResult{Model: name, Path: a.Path, Version: a.Version, Digest: a.Digest, Time: m.now().UTC()}
	if res.Found, err = m.check(ctx, a); err != nil {
		return nil, err
	}
	if res.Found.Empty() {
		res.AlreadyApproved, res.Verified = true, true
		return res, nil
	}
	root := a.Path
	stamp := res.Time.Format("20060102T150405.000000000Z")
	qdir := filepath.Join(m.dir, "quarantine", stamp+"-"+name)
	if !res.Found.RootMissing && (m.inPlace || !sameDevice(root, filepath.Dir(root))) {
		// A mount point cannot be swapped: replace file by file inside it.
		if err := m.rollbackInPlace(ctx, a, res, stamp, qdir); err != nil {
			return nil, fmt.Errorf("rollback model %s: %w", name, err)
		}
	} else {
		staging := filepath.Join(filepath.Dir(root), "."+filepath.Base(root)+".pipewarden-rollback-"+stamp)
		if err := m.stage(ctx, a, staging); err != nil {
			os.RemoveAll(staging)
			return nil, fmt.Errorf("rollback model %s: %w", name, err)
		}
		// Swap the trees. Afterwards staging holds the tampered tree.
		if res.Found.RootMissing {
			if err := os.MkdirAll(filepath.Dir(root), 0o755); err == nil {
				err = os.Rename(staging, root)
			}
			if err != nil {
				os.RemoveAll(staging)
				return nil, fmt.Errorf("rollback model %s: restore %s: %w", name, root, err)
			}
		} else if err := unix.Renameat2(unix.AT_FDCWD, staging, unix.AT_FDCWD, root, unix.RENAME_EXCHANGE); err != nil {
			os.RemoveAll(staging)
			if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EXDEV) && !errors.Is(err, unix.EBUSY) {
				return nil, fmt.Errorf("rollback model %s: swap %s with the restored copy: %w", name, root, err)
			}
			// The file system cannot exchange directories: fall back to file by file.
			if err := m.rollbackInPlace(ctx, a, res, stamp, qdir); err != nil {
				return nil, fmt.Errorf("rollback model %s: %w", name, err)
			}
			return m.finishRollback(ctx, a, res, start)
		}
		if err := syncDir(filepath.Dir(root)); err != nil {
			m.log.Warn("rollback: sync", "err", err)
		}
		if !res.Found.RootMissing {
			m.carryIgnored(a, staging, root)
			res.Quarantine = qdir
			for _, f := range res.Found.Files() {
				if _, err := os.Lstat(filepath.Join(staging, filepath.FromSlash(f))); err == nil && f != "." {
					res.Quarantined = append(res.Quarantined, f)
				}
			}
			if err := m.quarantine(staging, qdir, res.Quarantined); err != nil {
				return nil, fmt.Errorf("rollback model %s: the approved version is restored but the tampered files could not be quarantined (they are in %s): %w", name, staging, err)
			}
		}
	}
	return m.finishRollback(ctx, a, res, start)
}

// finishRollback verifies the restored model and writes the record into the quarantine folder.
func (m *Manager) finishRollback(ctx context.Context, a *Approval, res *RollbackResult, start time.Time) (*RollbackResult, error) {
	name := a.Model
	after, err := m.check(ctx, a)
	if err != nil {
		return nil, err
	}
	res.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	res.Verified = after.Empty()
	if !res.Verified {
		res.Remaining = &after
	}
	if res.Quarantine != "" {
		if b, err := json.MarshalIndent(res, "", "  "); err == nil {
			if err := writeFileAtomic(filepath.Join(res.Quarantine, "rollback.json"), append(b, '\n'), 0o640); err != nil {
				m.log.Warn("rollback: write record", "err", err)
			}
		}
	}
	m.log.Info("model rolled back", "model", name, "version", a.Version, "files", res.Quarantined, "verified", res.Verified)
	if !res.Verified {
		return res, fmt.Errorf("rollback model %s: %w: %s", name, ErrRollbackUnverified, strings.Join(after.Files(), ", "))
	}
	return res, nil
}

// stage writes the approved files into dir from the content-addressed store, checking every byte
// against the approval, and syncs everything.
func (m *Manager) stage(ctx context.Context, a *Approval, dir string) error {
	mode := fs.FileMode(0o755)
	if fi, err := os.Stat(a.Path); err == nil {
		mode = fi.Mode().Perm()
	}
	if err := os.Mkdir(dir, mode); err != nil {
		return err
	}
	dirs := map[string]bool{dir: true}
	for _, f := range a.Files {
		if err := ctx.Err(); err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(f.Name))
		for d := filepath.Dir(dst); !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		got, _, err := copyFile(dst, m.cas.path(f.SHA256), f.Mode)
		if err != nil {
			return fmt.Errorf("approved file %s: %w", f.Name, err)
		}
		if got != f.SHA256 {
			return fmt.Errorf("approved file %s: content store blob %s is corrupt (hashes to %s)", f.Name, f.SHA256, got)
		}
	}
	for d := range dirs {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	return nil
}

// carryIgnored moves the paths the approval ignores from the old tree into the restored one.
func (m *Manager) carryIgnored(a *Approval, oldTree, root string) {
	for _, ig := range append([]string{".git", ".gitattributes", ".github", ".gitignore"}, a.IgnorePaths...) {
		from := filepath.Join(oldTree, filepath.FromSlash(ig))
		if _, err := os.Lstat(from); err != nil {
			continue
		}
		to := filepath.Join(root, filepath.FromSlash(ig))
		if _, err := os.Lstat(to); err == nil {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			m.log.Warn("rollback: carry ignored path", "path", ig, "err", err)
			continue
		}
		if err := os.Rename(from, to); err != nil {
			m.log.Warn("rollback: carry ignored path", "path", ig, "err", err)
		}
	}
}

// quarantine moves the tampered tree into qdir/tree. Across file systems, where a rename cannot
// move it, the deviating files are copied there first and only then is the tree removed.
func (m *Manager) quarantine(oldTree, qdir string, files []string) error {
	if err := os.MkdirAll(qdir, 0o750); err != nil {
		return err
	}
	dst := filepath.Join(qdir, "tree")
	err := os.Rename(oldTree, dst)
	if err == nil {
		return syncDir(qdir)
	}
	if !errors.Is(err, unix.EXDEV) {
		return err
	}
	for _, f := range files {
		if f == "." {
			continue
		}
		src := filepath.Join(oldTree, filepath.FromSlash(f))
		to := filepath.Join(dst, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(to), 0o750); err != nil {
			return err
		}
		fi, err := os.Lstat(src)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue // a missing file has nothing to keep
		case err != nil:
			return err
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(src)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, to); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			if _, _, err := copyFile(to, src, fi.Mode().Perm()); err != nil {
				return err
			}
		default:
			// A FIFO, socket or device cannot be copied; its name is in the record.
			if err := os.WriteFile(to+".pipewarden-not-copied", []byte(fi.Mode().String()+"\n"), 0o640); err != nil {
				return err
			}
		}
	}
	return os.RemoveAll(oldTree)
}

// relUnder is p relative to root in POSIX form, or "" when p is not under root.
func relUnder(root, p string) string {
	r, err := filepath.Rel(root, p)
	if err != nil || r == "." || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return ""
	}
	return path.Clean(filepath.ToSlash(r))
}

// stagingPrefix names the directory an in-place rollback stages files in, inside the model.
const stagingPrefix = ".pipewarden-rollback-"

// sameDevice reports whether two paths are on the same file system (a model directory that is a
// mount point is not on its parent's).
func sameDevice(a, b string) bool {
	var sa, sb unix.Stat_t
	if unix.Stat(a, &sa) != nil || unix.Stat(b, &sb) != nil {
		return true // let the rename say what is wrong
	}
	return sa.Dev == sb.Dev
}

// rollbackInPlace restores only the deviating files, each with its own atomic rename from a
// staging directory inside the model. Each tampered file is first kept in quarantine (a hard link,
// or a copy across file systems); a changed file is then replaced by rename, so it is never
// absent; an extra file is removed once kept.
func (m *Manager) rollbackInPlace(ctx context.Context, a *Approval, res *RollbackResult, stamp, qdir string) error {
	root := a.Path
	staging := filepath.Join(root, stagingPrefix+stamp)
	if err := os.Mkdir(staging, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(staging)
	approved := make(map[string]File, len(a.Files))
	for _, f := range a.Files {
		approved[f.Name] = f
	}
	files := res.Found.Files()
	staged := map[string]string{}
	for i, n := range files {
		f, ok := approved[n]
		if !ok {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		dst := filepath.Join(staging, fmt.Sprint(i))
		got, _, err := copyFile(dst, m.cas.path(f.SHA256), f.Mode)
		if err != nil {
			return fmt.Errorf("approved file %s: %w", n, err)
		}
		if got != f.SHA256 {
			return fmt.Errorf("approved file %s: content store blob %s is corrupt (hashes to %s)", n, f.SHA256, got)
		}
		staged[n] = dst
	}
	if err := syncDir(staging); err != nil {
		return err
	}
	tree := filepath.Join(qdir, "tree")
	if err := os.MkdirAll(qdir, 0o750); err != nil {
		return err
	}
	res.Quarantine = qdir
	for _, n := range files {
		if n == "." {
			continue
		}
		p := filepath.Join(root, filepath.FromSlash(n))
		fi, err := os.Lstat(p)
		exists := err == nil
		if exists {
			if fi.IsDir() {
				return fmt.Errorf("%s: a directory where the approved file was; move it away and roll back again", p)
			}
			if err := keep(p, filepath.Join(tree, filepath.FromSlash(n)), fi); err != nil {
				return fmt.Errorf("quarantine %s: %w", p, err)
			}
			res.Quarantined = append(res.Quarantined, n)
		}
		if src, ok := staged[n]; ok {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.Rename(src, p); err != nil {
				return fmt.Errorf("restore %s: %w", p, err)
			}
		} else if exists {
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("remove %s (kept in %s): %w", p, tree, err)
			}
		}
		if err := syncDir(filepath.Dir(p)); err != nil {
			return err
		}
	}
	return nil
}

// keep puts a copy of p at dst: a hard link when possible, else a copy.
func keep(p, dst string, fi fs.FileInfo) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return err
	}
	if err := os.Link(p, dst); err == nil {
		return nil
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		return os.Symlink(target, dst)
	case fi.Mode().IsRegular():
		_, _, err := copyFile(dst, p, fi.Mode().Perm())
		return err
	default:
		return os.WriteFile(dst+".pipewarden-not-copied", []byte(fi.Mode().String()+"\n"), 0o640)
	}
}
