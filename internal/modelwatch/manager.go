// Package modelwatch keeps models to their approved versions: it records approvals (the manifest
// of a model directory, who approved it and when, and an optional OpenSSF Model Signing signature
// verified on the way in), keeps a copy of every approved file in a content-addressed store,
// watches model directories with inotify plus a periodic full re-hash and reports any change that
// was not approved, and rolls a model back to its last approved version atomically, keeping the
// tampered files in quarantine as evidence.
//
// Everything lives under <data>/models/: approvals/<name>.json (the history of each model),
// cas/sha256/<digest> (approved file contents), quarantine/<time>-<name>/ (tampered files and a
// record of the rollback) and status.json (what the watcher last saw).
package modelwatch

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pipewarden/pipewarden/internal/signing"
)

// Errors callers branch on.
var (
	// ErrNotApproved is wrapped when a model has no approved version.
	ErrNotApproved = errors.New("model has no approved version")
	// ErrInvalidModel is wrapped when a directory cannot be approved as it is: not a directory,
	// a file that cannot be hashed, bad ignore paths, or files changing during the approval.
	ErrInvalidModel = errors.New("cannot approve")
)

// Options configure a Manager.
type Options struct {
	// DataDir is pipewarden's data directory; the manager uses DataDir/models.
	DataDir string
	// CASMaxBytes caps the content-addressed store; 0 means DefaultCASMaxBytes.
	CASMaxBytes int64
	// Workers bounds parallel hashing; 0 means GOMAXPROCS.
	Workers int
	Now     func() time.Time
	Logger  *slog.Logger
}

// Manager records approvals and rolls models back. Its methods are safe for concurrent use, also
// across processes sharing the data directory (a CLI beside a daemon): changes take a file lock.
type Manager struct {
	dir  string // <data>/models
	cas  *cas
	opts Options
	now  func() time.Time
	log  *slog.Logger
	// inPlace forces the file-by-file rollback used for mount points (tests).
	inPlace bool
}

// Open prepares <data>/models.
func Open(opts Options) (*Manager, error) {
	if opts.DataDir == "" {
		return nil, errors.New("model store: data directory is required")
	}
	if opts.CASMaxBytes == 0 {
		opts.CASMaxBytes = DefaultCASMaxBytes
	}
	if opts.CASMaxBytes < 0 {
		return nil, fmt.Errorf("model store: content store cap %d must be positive", opts.CASMaxBytes)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	data, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data directory %s: %w", opts.DataDir, err)
	}
	dir := filepath.Join(data, "models")
	for _, d := range []string{dir, filepath.Join(dir, "approvals"), filepath.Join(dir, "cas", "sha256"), filepath.Join(dir, "quarantine")} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("model store: %w", err)
		}
	}
	return &Manager{dir: dir, cas: &cas{root: filepath.Join(dir, "cas"), maxBytes: opts.CASMaxBytes},
		opts: opts, now: opts.Now, log: opts.Logger}, nil
}

// Dir is <data>/models.
func (m *Manager) Dir() string { return m.dir }

func (m *Manager) historyPath(name string) string {
	return filepath.Join(m.dir, "approvals", name+".json")
}

// lock serializes changes across processes with an advisory lock on <data>/models/.lock.
func (m *Manager) lock() (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(m.dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("model store lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("model store lock: %w", err)
	}
	return func() { unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
}

// History returns every approved version of a model, oldest first. A model never approved has an
// empty history and ErrNotApproved.
func (m *Manager) History(name string) (*History, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	p := m.historyPath(name)
	b, err := readLimited(p, MaxHistoryBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return &History{Schema: historySchema, Model: name}, fmt.Errorf("model %s: %w", name, ErrNotApproved)
	}
	if err != nil {
		return nil, fmt.Errorf("approvals of model %s: %w", name, err)
	}
	h, err := ParseHistory(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if h.Model != name {
		return nil, fmt.Errorf("%s: %w: names model %q", p, ErrInvalidHistory, h.Model)
	}
	if len(h.Versions) == 0 {
		return h, fmt.Errorf("model %s: %w", name, ErrNotApproved)
	}
	return h, nil
}

// Latest is the last approved version of a model.
func (m *Manager) Latest(name string) (*Approval, error) {
	h, err := m.History(name)
	if err != nil {
		return nil, err
	}
	return h.Latest(), nil
}

// Models lists the names of every model with an approvals file, sorted.
func (m *Manager) Models() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(m.dir, "approvals"))
	if err != nil {
		return nil, fmt.Errorf("model store: %w", err)
	}
	var out []string
	for _, e := range ents {
		n, ok := strings.CutSuffix(e.Name(), ".json")
		if ok && e.Type().IsRegular() && ValidName(n) == nil {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

// ApproveRequest is what an approval needs.
type ApproveRequest struct {
	Name string
	Path string // the model directory
	// Approver is who approved (a user name, an API principal); recorded as given.
	Approver string
	// Signature, when not nil, is an OMS signature file that must verify with Verifier and match
	// the files exactly, or the approval is refused.
	Signature []byte
	Verifier  signing.Verifier
	// IgnorePaths are relative to the model root and left out of the approval (and of watching).
	IgnorePaths []string
}

// SignatureError is returned when an approval's signature does not verify; Result names every
// reason, for reports.
type SignatureError struct {
	Model  string
	Result *signing.Result
}

func (e *SignatureError) Error() string {
	var why []string
	for _, f := range e.Result.Findings() {
		why = append(why, f.Title)
	}
	return fmt.Sprintf("model %s: signature check failed: %s", e.Model, strings.Join(why, "; "))
}

// Approve records the model at req.Path as the next approved version of req.Name and keeps a copy
// of its files in the content-addressed store. It refuses a model with any file it cannot hash,
// a signature that does not verify, and files that would take the store over its cap.
func (m *Manager) Approve(ctx context.Context, req ApproveRequest) (*Approval, error) {
	if err := ValidName(req.Name); err != nil {
		return nil, err
	}
	root, err := filepath.Abs(req.Path)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", req.Path, err)
	}
	fi, err := os.Lstat(root)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", req.Path, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%w model %s: not a directory (approve the directory that holds the model)", ErrInvalidModel, req.Path)
	}
	if root == "/" {
		return nil, fmt.Errorf("%w model %s: the file system root cannot be a model", ErrInvalidModel, req.Path)
	}
	ignore := slices.Clone(req.IgnorePaths)
	for _, p := range ignore {
		if err := validRelName(filepath.ToSlash(p)); err != nil {
			return nil, fmt.Errorf("%w model %s: ignore path: %v", ErrInvalidModel, req.Path, err)
		}
	}
	if strings.HasPrefix(m.dir+string(filepath.Separator), root+string(filepath.Separator)) {
		return nil, fmt.Errorf("%w model %s: it contains pipewarden's data directory %s", ErrInvalidModel, req.Path, m.dir)
	}
	if req.Signature != nil {
		if req.Verifier == nil {
			return nil, fmt.Errorf("model %s: a signature needs a key or certificate chain to verify it", req.Name)
		}
		res, err := signing.VerifyDir(ctx, root, req.Signature, req.Verifier, signing.VerifyOptions{
			IgnorePaths: ignore, Workers: m.opts.Workers, Now: m.now,
		})
		if err != nil {
			return nil, err
		}
		if !res.OK() {
			return nil, &SignatureError{Model: req.Name, Result: res}
		}
		return m.record(ctx, req, root, ignore, res)
	}
	return m.record(ctx, req, root, ignore, nil)
}

func (m *Manager) record(ctx context.Context, req ApproveRequest, root string, ignore []string, verified *signing.Result) (*Approval, error) {
	man, err := signing.ComputeManifest(ctx, root, signing.Options{IgnorePaths: ignore, Workers: m.opts.Workers})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidModel, err) // a *TreeError names every unhashable file
	}
	signer := ""
	if verified != nil {
		signer = verified.Signer
		if verified.Actual.Serialization.Method == signing.MethodFiles && !signing.Diff(verified.Actual, man).Empty() {
			return nil, fmt.Errorf("%w model %s: it changed while it was being approved: approve again once it is stable", ErrInvalidModel, req.Path)
		}
	}
	a := &Approval{
		Model: req.Name, Path: root, Approver: req.Approver, Time: m.now().UTC(),
		Digest: digestString(man.RootDigest()), IgnorePaths: ignore,
		Signature: req.Signature, Signer: signer,
	}
	if a.Approver = strings.TrimSpace(a.Approver); a.Approver == "" {
		a.Approver = "unknown"
	}
	for _, r := range man.Resources {
		fi, err := os.Stat(filepath.Join(root, filepath.FromSlash(r.Name)))
		if err != nil {
			return nil, fmt.Errorf("approve: %w", err)
		}
		a.Files = append(a.Files, File{Name: r.Name, SHA256: hex.EncodeToString(r.Digest), Size: fi.Size(), Mode: fi.Mode().Perm()})
	}
	unlock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if _, err := m.cas.reserve(a.Files); err != nil {
		return nil, fmt.Errorf("approve model %s: %w", req.Name, err)
	}
	for _, f := range a.Files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := m.cas.put(filepath.Join(root, filepath.FromSlash(f.Name)), f.SHA256); err != nil {
			return nil, fmt.Errorf("approve model %s: %w", req.Name, err)
		}
	}
	h, err := m.History(req.Name)
	if err != nil && !errors.Is(err, ErrNotApproved) {
		return nil, err
	}
	if len(h.Versions) >= MaxVersions {
		return nil, fmt.Errorf("model %s: %d approved versions is the limit", req.Name, MaxVersions)
	}
	a.Version = len(h.Versions) + 1
	h.Versions = append(h.Versions, *a)
	b, err := h.encode()
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(m.historyPath(req.Name), b, 0o640); err != nil {
		return nil, err
	}
	m.log.Info("model approved", "model", a.Model, "version", a.Version, "digest", a.Digest, "approver", a.Approver, "files", len(a.Files))
	return a, nil
}

// readLimited reads a file no larger than max bytes.
func readLimited(p string, max int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > max {
		return nil, fmt.Errorf("%s: %d bytes exceeds the limit of %d", p, fi.Size(), max)
	}
	b := make([]byte, fi.Size())
	if _, err := f.ReadAt(b, 0); err != nil && fi.Size() > 0 {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return b, nil
}
