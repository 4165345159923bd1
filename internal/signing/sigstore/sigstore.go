// Package sigstore verifies keyless OpenSSF Model Signing bundles (Fulcio certificate, Rekor
// transparency log entry) with sigstore-go against a trusted root file, without network access.
package sigstore

import (
	"errors"
	"fmt"
	"os"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/pipewarden/pipewarden/internal/signing"
)

// Verifier checks a keyless bundle: the certificate chains to a Fulcio CA of the trusted root at
// the time the transparency log saw the signature, carries the expected identity and issuer,
// has a valid certificate timestamp, and the log entry's promise is signed by a trusted log.
type Verifier struct {
	v      *verify.Verifier
	policy verify.PolicyBuilder
}

// NewVerifier loads the trusted root JSON (as `cosign trusted-root create` or Sigstore's TUF
// repository publish it) and expects certificates for identity (the SAN: an e-mail address or a
// URI) issued through the OIDC issuer.
func NewVerifier(trustedRootPath, identity, issuer string) (*Verifier, error) {
	if identity == "" || issuer == "" {
		return nil, errors.New("keyless verification needs both the signer identity and the OIDC issuer")
	}
	raw, err := os.ReadFile(trustedRootPath)
	if err != nil {
		return nil, err
	}
	tr, err := root.NewTrustedRootFromJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("trusted root %s: %w", trustedRootPath, err)
	}
	v, err := verify.NewVerifier(tr, verify.WithSignedCertificateTimestamps(1),
		verify.WithTransparencyLog(1), verify.WithObserverTimestamps(1))
	if err != nil {
		return nil, fmt.Errorf("trusted root %s: %w", trustedRootPath, err)
	}
	id, err := verify.NewShortCertificateIdentity(issuer, "", identity, "")
	if err != nil {
		return nil, err
	}
	// The statement's digests are checked by package signing against the files, so the bundle
	// is verified here without an artifact.
	return &Verifier{v: v, policy: verify.NewPolicy(verify.WithoutArtifactUnsafe(), verify.WithCertificateIdentity(id))}, nil
}

// Verify implements signing.Verifier on the bundle's raw bytes, so the envelope checked here is
// the one package signing decodes.
func (s *Verifier) Verify(b *signing.Bundle) (string, error) {
	var sb bundle.Bundle
	if err := sb.UnmarshalJSON(b.Raw); err != nil {
		return "", fmt.Errorf("%w: %v", signing.ErrBundle, err)
	}
	res, err := s.v.Verify(&sb, s.policy)
	if err != nil {
		return "", fmt.Errorf("%w: %v", signing.ErrSignature, err)
	}
	signer := "sigstore keyless"
	if res.Signature != nil && res.Signature.Certificate != nil {
		c := res.Signature.Certificate
		signer = fmt.Sprintf("sigstore identity %s (issuer %s)", c.SubjectAlternativeName, c.Issuer)
	}
	return signer, nil
}
