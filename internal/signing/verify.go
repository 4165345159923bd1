package signing

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/pipewarden/pipewarden/internal/finding"
)

// Verifier checks who signed a bundle and that the envelope signature is theirs. It returns a
// description of the signer for reports. KeyVerifier and CertificateVerifier implement it.
type Verifier interface {
	Verify(b *Bundle) (signer string, err error)
}

// VerifyOptions tune VerifyDir.
type VerifyOptions struct {
	// IgnorePaths are relative to the model root (the signature file belongs here when it lies
	// inside the model). The paths the signature itself records are ignored as well.
	IgnorePaths []string
	// IgnoreUnsignedFiles hashes only the files the signature names, so extra files pass.
	IgnoreUnsignedFiles bool
	// AllowSymlinks follows symbolic links instead of refusing them.
	AllowSymlinks bool
	// Workers bounds parallel hashing; 0 means GOMAXPROCS.
	Workers int
	// Now stamps findings; nil means time.Now.
	Now func() time.Time
}

// Result is what verifying a model concluded.
type Result struct {
	Model string // the model path as given
	// Signer describes who signed, when the signature verified.
	Signer string
	// SignatureErr is why the signature or its statement was rejected; nil when it verified.
	SignatureErr error
	Expected     *Manifest // the signed manifest (nil when the signature was rejected)
	Actual       *Manifest // the manifest of the files on disk
	Diff         ManifestDiff
	// Problems are files that could not be hashed.
	Problems []PathProblem
	now      time.Time
}

// OK reports whether the model matches a valid signature exactly.
func (r *Result) OK() bool {
	return r.SignatureErr == nil && r.Diff.Empty() && len(r.Problems) == 0
}

// VerifyDir verifies the signature file contents sig with v, then hashes the model at dir with the
// serialization the signature records and compares. A rejected signature, a difference or an
// unhashable file is reported in the Result; the error is for a model path that cannot be used
// at all, or cancellation.
func VerifyDir(ctx context.Context, dir string, sig []byte, v Verifier, opts VerifyOptions) (*Result, error) {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	r := &Result{Model: dir, now: now()}
	b, err := ParseBundle(sig)
	if err == nil {
		r.Signer, err = v.Verify(b)
	}
	if err == nil {
		r.Expected, err = DecodeStatement(b.DSSEEnvelope.Payload)
	}
	if err != nil {
		r.SignatureErr = err
		r.Signer = ""
		// Still check the model can be read, so an unusable path is a usage error, not a finding.
		if _, _, err := collect(dir, Options{Method: MethodFiles, AllowSymlinks: opts.AllowSymlinks, IgnorePaths: opts.IgnorePaths}); err != nil {
			return nil, err
		}
		return r, nil
	}
	o := Options{
		Method:        r.Expected.Serialization.Method,
		ShardSize:     r.Expected.Serialization.ShardSize,
		IgnorePaths:   append(append([]string(nil), opts.IgnorePaths...), r.Expected.Serialization.IgnorePaths...),
		AllowSymlinks: opts.AllowSymlinks,
		Workers:       opts.Workers,
	}
	if opts.IgnoreUnsignedFiles {
		o.Only = map[string]bool{}
		for _, res := range r.Expected.Resources {
			o.Only[FileOf(res, r.Expected.Serialization.Method)] = true
		}
	}
	actual, err := ComputeManifest(ctx, dir, o)
	var te *TreeError
	switch {
	case errors.As(err, &te):
		r.Problems = te.Problems
	case err != nil:
		return nil, err
	}
	r.Actual = actual
	r.Diff = Diff(r.Expected, actual)
	if len(r.Problems) > 0 {
		// A file that could not be hashed is reported as such, not also as missing.
		unhashable := map[string]bool{}
		for _, p := range r.Problems {
			unhashable[p.Name] = true
		}
		kept := r.Diff.Missing[:0]
		for _, f := range r.Diff.Missing {
			if !unhashable[f] {
				kept = append(kept, f)
			}
		}
		r.Diff.Missing = kept
	}
	return r, nil
}

// Finding rule ids.
const (
	RuleSignatureInvalid = "signing.signature-invalid"
	RuleFileChanged      = "signing.file-changed"
	RuleFileMissing      = "signing.file-missing"
	RuleFileUnsigned     = "signing.file-unsigned"
	RuleFileUnverifiable = "signing.file-unverifiable"
)

// Findings turns the result into findings: nothing when the model verified.
func (r *Result) Findings() []finding.Finding {
	var fs []finding.Finding
	add := func(rule string, sev finding.Severity, file, title string, ev map[string]any) {
		loc := r.Model
		if file != "" && file != "." {
			loc = filepath.Join(r.Model, filepath.FromSlash(file))
		}
		subj := finding.Subject{Kind: "model", Name: r.Model}
		if file != "" {
			subj = finding.Subject{Kind: "file", Name: loc}
		}
		fs = append(fs, finding.Finding{
			Rule: rule, Severity: sev, Title: title, Subject: subj,
			Labels:     map[string]string{"model": r.Model},
			Evidence:   ev,
			ATLAS:      []string{"AML.T0018", "AML.T0010"},
			OWASP:      []string{"ML06:2023", "ML10:2023"},
			Confidence: 1, Time: r.now,
			Location: &finding.Location{Path: loc},
		})
	}
	if r.SignatureErr != nil {
		add(RuleSignatureInvalid, finding.Critical, "",
			fmt.Sprintf("signature of model %s is not valid: %v", r.Model, r.SignatureErr),
			map[string]any{"error": r.SignatureErr.Error()})
		return fs
	}
	for _, c := range r.Diff.Changed {
		ev := map[string]any{"signer": r.Signer, "expected": resourceEvidence(c.Expected), "actual": resourceEvidence(c.Actual)}
		add(RuleFileChanged, finding.Critical, c.File, fmt.Sprintf("file %s differs from the signed model", c.File), ev)
	}
	for _, f := range r.Diff.Missing {
		add(RuleFileMissing, finding.Critical, f, fmt.Sprintf("signed file %s is missing", f), map[string]any{"signer": r.Signer})
	}
	for _, f := range r.Diff.Extra {
		add(RuleFileUnsigned, finding.High, f, fmt.Sprintf("file %s is not covered by the signature", f), map[string]any{"signer": r.Signer})
	}
	for _, p := range r.Problems {
		ev := map[string]any{"reason": p.Reason}
		if p.Err != nil {
			ev["error"] = p.Err.Error()
		}
		add(RuleFileUnverifiable, finding.High, p.Name, fmt.Sprintf("file %s cannot be verified: %s", p.Name, p.Reason), ev)
	}
	return fs
}

func resourceEvidence(rs []Resource) []map[string]string {
	out := make([]map[string]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, map[string]string{"name": r.Name, "algorithm": r.Algorithm, "digest": fmt.Sprintf("%x", r.Digest)})
	}
	return out
}
