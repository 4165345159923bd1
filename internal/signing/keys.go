package signing

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
)

// ErrSignature is wrapped when a signature does not verify with the given key or chain.
var ErrSignature = errors.New("signature does not verify")

// LoadPrivateKey reads an ECDSA P-256, P-384 or P-521 private key from PEM: SEC1 ("EC PRIVATE
// KEY", as `openssl ecparam -genkey` writes, EC PARAMETERS blocks skipped) or PKCS#8.
func LoadPrivateKey(pemBytes []byte) (*ecdsa.PrivateKey, error) {
	rest := pemBytes
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			return nil, errors.New("no EC or PKCS#8 private key PEM block")
		}
		var key any
		var err error
		switch blk.Type {
		case "EC PARAMETERS":
			continue
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(blk.Bytes)
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("encrypted private keys are not supported; decrypt it with openssl pkcs8 first")
		default:
			if _, ok := blk.Headers["Proc-Type"]; ok {
				return nil, errors.New("encrypted private keys are not supported")
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", blk.Type, err)
		}
		ek, ok := key.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%T keys are not supported: only ECDSA P-256, P-384, P-521", key)
		}
		if _, err := curveHash(&ek.PublicKey); err != nil {
			return nil, err
		}
		return ek, nil
	}
}

// LoadPublicKey reads a PEM "PUBLIC KEY" (SubjectPublicKeyInfo) ECDSA key; text around the block
// (as certtool writes) is skipped.
func LoadPublicKey(pemBytes []byte) (*ecdsa.PublicKey, error) {
	rest := pemBytes
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			return nil, errors.New("no PUBLIC KEY PEM block")
		}
		if blk.Type != "PUBLIC KEY" {
			continue
		}
		key, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse public key: %w", err)
		}
		ek, ok := key.(*ecdsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%T keys are not supported: only ECDSA P-256, P-384, P-521", key)
		}
		if _, err := curveHash(ek); err != nil {
			return nil, err
		}
		return ek, nil
	}
}

// PublicKeyHint is the key identifier OMS writes in the bundle: hex SHA-256 of the key's PEM
// SubjectPublicKeyInfo encoding.
func PublicKeyHint(pub *ecdsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encode public key: %w", err)
	}
	sum := sha256.Sum256(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	return hex.EncodeToString(sum[:]), nil
}

// curveHash is the digest OMS pairs with each curve.
func curveHash(pub *ecdsa.PublicKey) (crypto.Hash, error) {
	switch pub.Curve {
	case elliptic.P256():
		return crypto.SHA256, nil
	case elliptic.P384():
		return crypto.SHA384, nil
	case elliptic.P521():
		return crypto.SHA512, nil
	}
	return 0, fmt.Errorf("curve %s is not supported: only P-256, P-384, P-521", pub.Curve.Params().Name)
}

func digest(h crypto.Hash, msg []byte) []byte {
	d := h.New()
	d.Write(msg)
	return d.Sum(nil)
}

// verifyEnvelope checks the one DSSE signature of b with pub. Besides the DSSE v1 encoding it
// accepts the encoding of model_signing 0.2 (signed with the curve's hash, or with SHA-256 as
// its certificate signer did), so old signatures keep verifying.
func verifyEnvelope(pub *ecdsa.PublicKey, e *Envelope) error {
	h, err := curveHash(pub)
	if err != nil {
		return err
	}
	sig := e.Signatures[0].Sig
	if ecdsa.VerifyASN1(pub, digest(h, PAE(e.Payload)), sig) {
		return nil
	}
	legacy := paeLegacy(e.Payload)
	if ecdsa.VerifyASN1(pub, digest(h, legacy), sig) || ecdsa.VerifyASN1(pub, digest(crypto.SHA256, legacy), sig) {
		return nil
	}
	return ErrSignature
}

// KeySigner signs with a private key, and optionally a certificate chain naming its public key.
type KeySigner struct {
	key   *ecdsa.PrivateKey
	chain []*x509.Certificate // signing certificate first
}

// NewKeySigner signs with key alone; the bundle names the key by its hint.
func NewKeySigner(key *ecdsa.PrivateKey) *KeySigner { return &KeySigner{key: key} }

// NewCertificateSigner signs with key and puts cert and chain (intermediates, then roots, as the
// caller lists them) in the bundle. cert must certify key's public half.
func NewCertificateSigner(key *ecdsa.PrivateKey, cert *x509.Certificate, chain []*x509.Certificate) (*KeySigner, error) {
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, errors.New("the certificate's public key does not match the private key")
	}
	return &KeySigner{key: key, chain: append([]*x509.Certificate{cert}, chain...)}, nil
}

// Sign signs a DSSE pre-authentication encoding.
func (s *KeySigner) Sign(pae []byte) ([]byte, error) {
	h, err := curveHash(&s.key.PublicKey)
	if err != nil {
		return nil, err
	}
	return ecdsa.SignASN1(rand.Reader, s.key, digest(h, pae))
}

// Material is the bundle's verification material for this signer.
func (s *KeySigner) Material() (VerificationMaterial, error) {
	vm := VerificationMaterial{TlogEntries: []json.RawMessage{}}
	if len(s.chain) == 0 {
		hint, err := PublicKeyHint(&s.key.PublicKey)
		if err != nil {
			return vm, err
		}
		vm.PublicKey = &PublicKeyIdentifier{Hint: hint}
		return vm, nil
	}
	vm.X509CertificateChain = &CertificateChain{}
	for _, c := range s.chain {
		vm.X509CertificateChain.Certificates = append(vm.X509CertificateChain.Certificates, RawCertificate{RawBytes: c.Raw})
	}
	return vm, nil
}

// KeyVerifier verifies bundles signed with one public key.
type KeyVerifier struct {
	pub  *ecdsa.PublicKey
	hint string
}

// NewKeyVerifier verifies with pub.
func NewKeyVerifier(pub *ecdsa.PublicKey) (*KeyVerifier, error) {
	hint, err := PublicKeyHint(pub)
	if err != nil {
		return nil, err
	}
	return &KeyVerifier{pub: pub, hint: hint}, nil
}

// Verify checks that b was signed by the key and returns a description of the signer.
func (v *KeyVerifier) Verify(b *Bundle) (string, error) {
	if pk := b.VerificationMaterial.PublicKey; pk != nil && pk.Hint != "" && pk.Hint != v.hint {
		return "", fmt.Errorf("%w: the bundle names public key %s, the given key is %s", ErrSignature, pk.Hint, v.hint)
	}
	if err := verifyEnvelope(v.pub, b.DSSEEnvelope); err != nil {
		return "", fmt.Errorf("%w with public key %s", err, v.hint)
	}
	return "public key " + v.hint, nil
}
