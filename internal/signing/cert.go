package signing

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// LoadCertificates reads every PEM CERTIFICATE block of a file.
func LoadCertificates(pemBytes []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := pemBytes
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate %d: %w", len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no CERTIFICATE PEM block")
	}
	return out, nil
}

// CertificateVerifier verifies bundles signed with a certificate that chains, through the
// intermediates carried in the bundle, to one of a set of trusted certificates.
type CertificateVerifier struct {
	roots *x509.CertPool
}

// NewCertificateVerifier trusts the given certificates (typically the root CA).
func NewCertificateVerifier(trusted []*x509.Certificate) *CertificateVerifier {
	pool := x509.NewCertPool()
	for _, c := range trusted {
		pool.AddCert(c)
	}
	return &CertificateVerifier{roots: pool}
}

// Verify validates the chain at the signing certificate's start of validity (as OMS does: the
// signature was made then), checks the certificate may sign (digital signature key usage or
// code signing extended key usage), and checks the envelope with its key.
func (v *CertificateVerifier) Verify(b *Bundle) (string, error) {
	var ders [][]byte
	switch vm := b.VerificationMaterial; {
	case vm.X509CertificateChain != nil && len(vm.X509CertificateChain.Certificates) > 0:
		for _, c := range vm.X509CertificateChain.Certificates {
			ders = append(ders, c.RawBytes)
		}
	case vm.Certificate != nil:
		ders = append(ders, vm.Certificate.RawBytes)
	default:
		return "", fmt.Errorf("%w: the bundle carries no certificate (was it signed with a key?)", ErrSignature)
	}
	certs := make([]*x509.Certificate, 0, len(ders))
	for i, d := range ders {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			return "", fmt.Errorf("%w: certificate %d of the bundle: %v", ErrBundle, i+1, err)
		}
		certs = append(certs, c)
	}
	leaf := certs[0]
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots: v.roots, Intermediates: inter, CurrentTime: leaf.NotBefore,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return "", fmt.Errorf("%w: certificate %q does not chain to the trusted certificates: %v", ErrSignature, leaf.Subject, err)
	}
	if !canSign(leaf) {
		return "", fmt.Errorf("%w: certificate %q may not be used for signing", ErrSignature, leaf.Subject)
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return "", fmt.Errorf("%w: certificate %q has a %T key, only ECDSA is supported", ErrSignature, leaf.Subject, leaf.PublicKey)
	}
	if err := verifyEnvelope(pub, b.DSSEEnvelope); err != nil {
		return "", fmt.Errorf("%w with the key of certificate %q", err, leaf.Subject)
	}
	return fmt.Sprintf("certificate %q issued by %q", leaf.Subject, leaf.Issuer), nil
}

func canSign(c *x509.Certificate) bool {
	if c.KeyUsage&x509.KeyUsageDigitalSignature != 0 {
		return true
	}
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageCodeSigning {
			return true
		}
	}
	return false
}
