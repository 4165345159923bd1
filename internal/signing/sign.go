package signing

import (
	"context"
	"fmt"
)

// Signer produces the signature and verification material of a bundle. KeySigner implements
// it; a hardware or remote signer could too.
type Signer interface {
	// Sign signs the DSSE pre-authentication encoding of the payload.
	Sign(pae []byte) ([]byte, error)
	// Material is what the bundle says about the signer.
	Material() (VerificationMaterial, error)
}

// Sign wraps the manifest's statement in a DSSE envelope signed by s and returns the bundle
// bytes, as OMS writes a signature file.
func Sign(m *Manifest, s Signer) ([]byte, error) {
	payload, err := EncodeStatement(m)
	if err != nil {
		return nil, err
	}
	sig, err := s.Sign(PAE(payload))
	if err != nil {
		return nil, fmt.Errorf("sign statement: %w", err)
	}
	vm, err := s.Material()
	if err != nil {
		return nil, err
	}
	b := &Bundle{
		MediaType:            BundleMediaType,
		VerificationMaterial: vm,
		DSSEEnvelope: &Envelope{
			Payload:     payload,
			PayloadType: PayloadTypeInToto,
			Signatures:  []DSSESignature{{Sig: sig}},
		},
	}
	return b.Encode()
}

// SignDir computes the manifest of the model at dir and signs it. It refuses to sign a model
// with any file it cannot hash.
func SignDir(ctx context.Context, dir string, s Signer, opts Options) ([]byte, *Manifest, error) {
	m, err := ComputeManifest(ctx, dir, opts)
	if err != nil {
		return nil, nil, err
	}
	out, err := Sign(m, s)
	if err != nil {
		return nil, nil, err
	}
	return out, m, nil
}
