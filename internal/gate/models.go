package gate

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"

	"github.com/pipewarden/pipewarden/internal/modelscan"
	"github.com/pipewarden/pipewarden/internal/signing"
)

// scan looks for code hidden in the model's files (internal/modelscan). A file that cannot be
// fully analysed is an inconclusive finding there, never clean.
func (r *runner) scan(ctx context.Context, m Model) CheckResult {
	c := CheckResult{Kind: KindScan, Target: m.Path, FailOn: r.failOn(m.FailOn)}
	s, err := modelscan.New(modelscan.Options{Allow: m.Allow, Now: r.stamp()})
	if err != nil {
		c.Err = fmt.Errorf("models: %s: scan.allow: %w", m.Path, err)
		return c
	}
	results, err := s.ScanPath(ctx, m.Path)
	if err != nil {
		c.Err = fmt.Errorf("%s: %w", m.Path, unwrapPath(err))
		return c
	}
	outcomes := map[string]int{}
	for _, res := range results {
		outcomes[string(res.Outcome)]++
	}
	c.Findings = modelscan.AllFindings(results)
	c.Extra = map[string]any{"files": len(results), "outcomes": outcomes}
	return c
}

// verify checks the model against its OpenSSF Model Signing signature (internal/signing).
func (r *runner) verify(ctx context.Context, m Model) CheckResult {
	c := CheckResult{Kind: KindVerify, Target: m.Path, FailOn: r.failOn(m.FailOn)}
	vf := m.Verify
	if _, err := os.Stat(m.Path); err != nil {
		c.Err = fmt.Errorf("%s: %w", m.Path, unwrapPath(err))
		return c
	}
	sig, err := os.ReadFile(vf.Signature)
	if err != nil {
		c.Err = fmt.Errorf("%s: %w", vf.Signature, unwrapPath(err))
		return c
	}
	verifier, err := verifierFor(vf)
	if err != nil {
		c.Err = err
		return c
	}
	ignore, err := signing.ResolveIgnorePaths(m.Path, append(append([]string(nil), vf.IgnorePaths...), vf.Signature))
	if err != nil {
		c.Err = fmt.Errorf("%s: %w", m.Path, err)
		return c
	}
	res, err := signing.VerifyDir(ctx, m.Path, sig, verifier, signing.VerifyOptions{
		IgnorePaths: ignore, IgnoreUnsignedFiles: vf.IgnoreUnsignedFiles, AllowSymlinks: vf.AllowSymlinks,
		Now: r.stamp(),
	})
	if err != nil {
		c.Err = err // names the model
		return c
	}
	c.Findings = res.Findings()
	c.Extra = map[string]any{"verified": res.OK(), "signature": vf.Signature}
	if res.Signer != "" {
		c.Extra["signer"] = res.Signer
	}
	if res.OK() && res.Actual != nil {
		c.Extra["model_digest"] = "sha256:" + hex.EncodeToString(res.Actual.RootDigest())
	}
	return c
}

func verifierFor(vf *Verify) (signing.Verifier, error) {
	if vf.Key != "" {
		b, err := os.ReadFile(vf.Key)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", vf.Key, unwrapPath(err))
		}
		pub, err := signing.LoadPublicKey(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", vf.Key, err)
		}
		v, err := signing.NewKeyVerifier(pub)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", vf.Key, err)
		}
		return v, nil
	}
	var trusted []*x509.Certificate
	for _, p := range vf.CertChain {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, unwrapPath(err))
		}
		cs, err := signing.LoadCertificates(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		trusted = append(trusted, cs...)
	}
	return signing.NewCertificateVerifier(trusted), nil
}

// ModelDigest is the digest a deploy event names for a model: the OpenSSF Model Signing
// manifest digest of its files ("sha256:<hex>"), the subject digest a signature of the same
// files carries.
func ModelDigest(ctx context.Context, path string) (string, error) {
	m, err := signing.ComputeManifest(ctx, path, signing.Options{})
	if err != nil {
		return "", fmt.Errorf("model digest of %s: %w", path, err)
	}
	return "sha256:" + hex.EncodeToString(m.RootDigest()), nil
}

// unwrapPath drops what a *os.PathError repeats (the operation and path), since messages here
// name the input themselves.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
