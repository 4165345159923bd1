package signing

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Bundle media types accepted; OMS writes the first.
const (
	BundleMediaType    = "application/vnd.dev.sigstore.bundle.v0.3+json"
	bundleMediaTypeAlt = "application/vnd.dev.sigstore.bundle+json;version=0.3"
	// MaxBundleSize bounds a signature file (a 100,000-file manifest is about 20 MB).
	MaxBundleSize = 64 << 20
)

// ErrBundle is wrapped by every error about a signature file that is not a usable bundle.
var ErrBundle = errors.New("invalid signature bundle")

// Bundle is a Sigstore bundle v0.3 carrying a DSSE envelope, as OMS writes it.
type Bundle struct {
	MediaType            string               `json:"mediaType"`
	VerificationMaterial VerificationMaterial `json:"verificationMaterial"`
	DSSEEnvelope         *Envelope            `json:"dsseEnvelope,omitempty"`
	// Raw is the file as read, for verifiers that parse it themselves (Sigstore).
	Raw []byte `json:"-"`
}

// VerificationMaterial says who signed: a public key hint, a certificate chain (leaf first), or a
// Sigstore keyless certificate with transparency log entries.
type VerificationMaterial struct {
	PublicKey            *PublicKeyIdentifier `json:"publicKey,omitempty"`
	X509CertificateChain *CertificateChain    `json:"x509CertificateChain,omitempty"`
	Certificate          *RawCertificate      `json:"certificate,omitempty"`
	TlogEntries          []json.RawMessage    `json:"tlogEntries"`
	TimestampData        json.RawMessage      `json:"timestampVerificationData,omitempty"`
}

// PublicKeyIdentifier names the signing key. OMS >= 1.1 writes only Hint (hex SHA-256 of the
// PEM public key); older versions wrote the PEM in RawBytes.
type PublicKeyIdentifier struct {
	Hint       string `json:"hint,omitempty"`
	RawBytes   []byte `json:"rawBytes,omitempty"`
	KeyDetails string `json:"keyDetails,omitempty"`
}

// CertificateChain is the signing certificate followed by the intermediates.
type CertificateChain struct {
	Certificates []RawCertificate `json:"certificates"`
}

// RawCertificate is one DER certificate.
type RawCertificate struct {
	RawBytes []byte `json:"rawBytes"`
}

// Envelope is a DSSE envelope.
type Envelope struct {
	Payload     []byte          `json:"payload"`
	PayloadType string          `json:"payloadType"`
	Signatures  []DSSESignature `json:"signatures"`
}

// DSSESignature is one signature of an envelope (OMS writes exactly one).
type DSSESignature struct {
	Sig   []byte `json:"sig"`
	KeyID string `json:"keyid"`
}

// ParseBundle reads a signature file. It checks the shape only, not the signature.
func ParseBundle(raw []byte) (*Bundle, error) {
	if len(raw) > MaxBundleSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrBundle, len(raw), MaxBundleSize)
	}
	var b Bundle
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBundle, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrBundle)
	}
	if b.MediaType != BundleMediaType && b.MediaType != bundleMediaTypeAlt {
		return nil, fmt.Errorf("%w: media type %q, want %q", ErrBundle, b.MediaType, BundleMediaType)
	}
	e := b.DSSEEnvelope
	if e == nil {
		return nil, fmt.Errorf("%w: no dsseEnvelope (message signatures are not model signatures)", ErrBundle)
	}
	if len(e.Signatures) != 1 {
		return nil, fmt.Errorf("%w: %d envelope signatures, want 1", ErrBundle, len(e.Signatures))
	}
	if len(e.Signatures[0].Sig) == 0 {
		return nil, fmt.Errorf("%w: empty envelope signature", ErrBundle)
	}
	if e.PayloadType != PayloadTypeInToto {
		return nil, fmt.Errorf("%w: payload type %q, want %q", ErrBundle, e.PayloadType, PayloadTypeInToto)
	}
	b.Raw = raw
	return &b, nil
}

// Encode writes the bundle as OMS does: compact JSON, no trailing newline.
func (b *Bundle) Encode() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(b); err != nil {
		return nil, fmt.Errorf("encode bundle: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// PAE is the DSSE v1 pre-authentication encoding of an in-toto payload: what is signed.
func PAE(payload []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "DSSEv1 %d %s %d ", len(PayloadTypeInToto), PayloadTypeInToto, len(payload))
	b.Write(payload)
	return b.Bytes()
}

// paeLegacy is what model_signing 0.2 signed by mistake: "DSSEV1" and the payload rendered as a
// Python bytes literal (b'...'). Only verified, never produced.
func paeLegacy(payload []byte) []byte {
	return fmt.Appendf(nil, "DSSEV1 %d %s %d %s", len(PayloadTypeInToto), PayloadTypeInToto, len(payload), pyBytesRepr(payload))
}

// pyBytesRepr renders b as Python's repr() of a bytes object.
func pyBytesRepr(b []byte) string {
	q := byte('\'')
	if bytes.IndexByte(b, '\'') >= 0 && bytes.IndexByte(b, '"') < 0 {
		q = '"'
	}
	var s strings.Builder
	s.WriteByte('b')
	s.WriteByte(q)
	for _, c := range b {
		switch {
		case c == q || c == '\\':
			s.WriteByte('\\')
			s.WriteByte(c)
		case c == '\t':
			s.WriteString(`\t`)
		case c == '\n':
			s.WriteString(`\n`)
		case c == '\r':
			s.WriteString(`\r`)
		case c < 0x20 || c >= 0x7f:
			s.WriteString(`\x`)
			s.WriteString(strconv.FormatUint(uint64(c)>>4, 16))
			s.WriteString(strconv.FormatUint(uint64(c)&0xf, 16))
		default:
			s.WriteByte(c)
		}
	}
	s.WriteByte(q)
	return s.String()
}
