package modelwatch

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pipewarden/pipewarden/internal/signing"
)

// Limits of an approvals file; it is read back from disk and may have been tampered with, so it is
// parsed as untrusted input.
const (
	MaxHistoryBytes  = 256 << 20
	MaxVersions      = 10_000
	MaxFilesPerModel = 1_000_000
	maxNameLen       = 4096
	maxFieldLen      = 64 << 10
	maxSignatureLen  = signing.MaxBundleSize
)

var modelNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ValidName reports whether name can name a model: 1-128 letters, digits, '.', '_' or '-',
// starting with a letter or digit. Names become file names in the data directory.
func ValidName(name string) error {
	if !modelNameRE.MatchString(name) {
		return fmt.Errorf("model name %q: want 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	return nil
}

// File is one approved file of a model.
type File struct {
	Name   string      `json:"name"`   // relative POSIX path
	SHA256 string      `json:"sha256"` // hex; also its key in the content-addressed store
	Size   int64       `json:"size"`
	Mode   fs.FileMode `json:"mode"` // permission bits restored on rollback
}

// Approval is one approved version of a model: its files as hashed when approved, who approved
// it and when, and the signature it was verified against, if any.
type Approval struct {
	Model    string    `json:"model"`
	Version  int       `json:"version"`
	Path     string    `json:"path"` // absolute model directory
	Approver string    `json:"approver"`
	Time     time.Time `json:"time"`
	// Digest is "sha256:" + the OMS root digest of Files (files serialization).
	Digest      string   `json:"digest"`
	IgnorePaths []string `json:"ignore_paths,omitempty"`
	Files       []File   `json:"files"`
	// Signature is the OMS signature file the model was verified against, verbatim.
	Signature []byte `json:"signature,omitempty"`
	Signer    string `json:"signer,omitempty"`
}

// Signed reports whether the approval carries a verified signature.
func (a *Approval) Signed() bool { return len(a.Signature) > 0 }

// Manifest is the approval's files as a signing manifest ("files" serialization), for Diff.
func (a *Approval) Manifest() *signing.Manifest {
	m := &signing.Manifest{
		ModelName:     path.Base(a.Path),
		Serialization: signing.Serialization{Method: signing.MethodFiles, HashType: signing.HashSHA256, IgnorePaths: a.IgnorePaths},
		Resources:     make([]signing.Resource, 0, len(a.Files)),
	}
	for _, f := range a.Files {
		d, _ := hex.DecodeString(f.SHA256) // validated when parsed or built
		m.Resources = append(m.Resources, signing.Resource{Name: f.Name, Algorithm: signing.HashSHA256, Digest: d})
	}
	return m
}

// History is every approved version of one model, oldest first, as stored in
// <data>/models/approvals/<name>.json.
type History struct {
	Schema   int        `json:"schema"`
	Model    string     `json:"model"`
	Versions []Approval `json:"versions"`
}

const historySchema = 1

// Latest is the newest approval, or nil.
func (h *History) Latest() *Approval {
	if h == nil || len(h.Versions) == 0 {
		return nil
	}
	return &h.Versions[len(h.Versions)-1]
}

// ErrInvalidHistory is wrapped by every error about an approvals file that cannot be trusted.
var ErrInvalidHistory = errors.New("invalid approvals file")

// ParseHistory reads and validates an approvals file. Everything a rollback later writes to disk
// comes from here, so file names are checked to stay inside the model directory.
func ParseHistory(b []byte) (*History, error) {
	if len(b) > MaxHistoryBytes {
		return nil, fmt.Errorf("%w: %d bytes exceeds the limit of %d", ErrInvalidHistory, len(b), MaxHistoryBytes)
	}
	if err := checkDepth(b, 8); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidHistory, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var h History
	if err := dec.Decode(&h); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidHistory, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the JSON object", ErrInvalidHistory)
	}
	if err := h.validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidHistory, err)
	}
	return &h, nil
}

func (h *History) validate() error {
	if h.Schema != historySchema {
		return fmt.Errorf("schema %d: want %d", h.Schema, historySchema)
	}
	if err := ValidName(h.Model); err != nil {
		return err
	}
	if len(h.Versions) > MaxVersions {
		return fmt.Errorf("%d versions exceeds the limit of %d", len(h.Versions), MaxVersions)
	}
	for i := range h.Versions {
		a := &h.Versions[i]
		if a.Model != h.Model {
			return fmt.Errorf("version %d names model %q, not %q", i+1, a.Model, h.Model)
		}
		if a.Version != i+1 {
			return fmt.Errorf("version %d is numbered %d", i+1, a.Version)
		}
		if err := a.validate(); err != nil {
			return fmt.Errorf("version %d: %v", a.Version, err)
		}
	}
	return nil
}

func (a *Approval) validate() error {
	switch {
	case !strings.HasPrefix(a.Path, "/") || len(a.Path) > maxNameLen || !utf8.ValidString(a.Path) || path.Clean(a.Path) != a.Path:
		return fmt.Errorf("path %q: want a clean absolute path", a.Path)
	case a.Path == "/":
		return fmt.Errorf("path %q: the file system root cannot be a model", a.Path)
	case len(a.Approver) > maxFieldLen || !utf8.ValidString(a.Approver):
		return fmt.Errorf("approver: too long or not UTF-8")
	case len(a.Signer) > maxFieldLen || !utf8.ValidString(a.Signer):
		return fmt.Errorf("signer: too long or not UTF-8")
	case len(a.Signature) > maxSignatureLen:
		return fmt.Errorf("signature of %d bytes exceeds the limit of %d", len(a.Signature), maxSignatureLen)
	case len(a.Files) > MaxFilesPerModel:
		return fmt.Errorf("%d files exceeds the limit of %d", len(a.Files), MaxFilesPerModel)
	case a.Time.IsZero():
		return fmt.Errorf("time is missing")
	}
	for _, p := range a.IgnorePaths {
		if err := validRelName(p); err != nil {
			return fmt.Errorf("ignore path: %v", err)
		}
	}
	seen := make(map[string]bool, len(a.Files))
	for _, f := range a.Files {
		if err := validRelName(f.Name); err != nil {
			return err
		}
		if seen[f.Name] {
			return fmt.Errorf("file %q: listed twice", f.Name)
		}
		seen[f.Name] = true
		if len(f.SHA256) != 64 || strings.ToLower(f.SHA256) != f.SHA256 {
			return fmt.Errorf("file %q: sha256 %q is not 64 lower-case hex digits", f.Name, f.SHA256)
		}
		if _, err := hex.DecodeString(f.SHA256); err != nil {
			return fmt.Errorf("file %q: sha256 %q is not hex", f.Name, f.SHA256)
		}
		if f.Size < 0 {
			return fmt.Errorf("file %q: negative size", f.Name)
		}
		if f.Mode&^fs.ModePerm != 0 {
			return fmt.Errorf("file %q: mode %v is not permission bits", f.Name, f.Mode)
		}
	}
	if want := digestString(a.Manifest().RootDigest()); a.Digest != want {
		return fmt.Errorf("digest %q does not match its files (%s)", a.Digest, want)
	}
	return nil
}

// validRelName accepts a clean relative POSIX path that stays inside its root.
func validRelName(n string) error {
	if n == "" || len(n) > maxNameLen || !utf8.ValidString(n) || strings.ContainsRune(n, 0) ||
		strings.HasPrefix(n, "/") || path.Clean(n) != n || n == "." || n == ".." || strings.HasPrefix(n, "../") {
		return fmt.Errorf("file name %q: want a clean relative path inside the model", n)
	}
	return nil
}

func digestString(d []byte) string { return "sha256:" + hex.EncodeToString(d) }

// checkDepth rejects JSON nested deeper than max before it is decoded.
func checkDepth(b []byte, max int) error {
	depth, inStr, esc := 0, false, false
	for _, c := range b {
		switch {
		case inStr:
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			if depth++; depth > max {
				return fmt.Errorf("JSON nested deeper than %d levels", max)
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}

func (h *History) encode() ([]byte, error) {
	b, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
