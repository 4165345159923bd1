package signing_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/signing"
)

// vectorsDir holds the OMS interoperability vectors of sigstore/model-transparency.
const vectorsDir = "../../../shared/fixtures/signing/model-transparency"

// singleFileVectors were signed as one file (resource "."), the model path being signme-1, as the
// upstream verify scripts call them.
var singleFileVectors = map[string]bool{"v0.3.1-elliptic-key": true, "v1.0.0-elliptic-key": true}

type vector struct {
	name   string
	dir    string // a writable copy
	model  string // model path inside dir
	sig    []byte
	isCert bool
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// copyVector copies one vector into a fresh temporary directory named like the vector.
func copyVector(t *testing.T, name string) vector {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(filepath.Join(vectorsDir, name))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if err := os.WriteFile(filepath.Join(dst, e.Name()), readFile(t, filepath.Join(vectorsDir, name, e.Name())), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	v := vector{name: name, dir: dst, model: dst, sig: readFile(t, filepath.Join(dst, "model.sig")), isCert: strings.HasSuffix(name, "-certificate")}
	if singleFileVectors[name] {
		v.model = filepath.Join(dst, "signme-1")
	}
	return v
}

// vectorNames lists the key and certificate vectors; the sigstore ones need the public-good
// trusted root and are covered by the sigstore package.
func vectorNames(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(vectorsDir)
	if err != nil {
		t.Fatalf("OMS vectors: %v", err)
	}
	var out []string
	for _, e := range ents {
		if n := e.Name(); e.IsDir() && strings.HasPrefix(n, "v") && (strings.HasSuffix(n, "-elliptic-key") || strings.HasSuffix(n, "-certificate")) {
			out = append(out, n)
		}
	}
	if len(out) < 9 {
		t.Fatalf("found %d key/certificate vectors, want at least 9", len(out))
	}
	return out
}

func vectorKeyVerifier(t testing.TB) *signing.KeyVerifier {
	t.Helper()
	pub, err := signing.LoadPublicKey(readFile(t, filepath.Join(vectorsDir, "keys/certificate/signing-key-pub.pem")))
	if err != nil {
		t.Fatal(err)
	}
	v, err := signing.NewKeyVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func vectorCAVerifier(t testing.TB) *signing.CertificateVerifier {
	t.Helper()
	roots, err := signing.LoadCertificates(readFile(t, filepath.Join(vectorsDir, "keys/certificate/ca-cert.pem")))
	if err != nil {
		t.Fatal(err)
	}
	return signing.NewCertificateVerifier(roots)
}

func verifierFor(t *testing.T, v vector) signing.Verifier {
	if v.isCert {
		return vectorCAVerifier(t)
	}
	return vectorKeyVerifier(t)
}

// verifyVector verifies as the upstream scripts do: ignore-me and the signature file ignored.
func verifyVector(t *testing.T, v vector, verifier signing.Verifier, sig []byte) *signing.Result {
	t.Helper()
	r, err := signing.VerifyDir(context.Background(), v.model, sig, verifier,
		signing.VerifyOptions{IgnorePaths: []string{"ignore-me", "model.sig"}})
	if err != nil {
		t.Fatalf("VerifyDir(%s): %v", v.name, err)
	}
	return r
}

func TestVectorsVerify(t *testing.T) {
	for _, name := range vectorNames(t) {
		t.Run(name, func(t *testing.T) {
			v := copyVector(t, name)
			r := verifyVector(t, v, verifierFor(t, v), v.sig)
			if !r.OK() {
				t.Fatalf("vector does not verify: sig err %v, diff %+v, problems %v", r.SignatureErr, r.Diff, r.Problems)
			}
			if fs := r.Findings(); len(fs) != 0 {
				t.Fatalf("verified vector has findings: %+v", fs)
			}
			if len(r.Expected.Resources) == 0 || r.Signer == "" {
				t.Fatalf("verified vector has no resources or no signer: %+v", r)
			}
		})
	}
}

// wantRule asserts the result has a finding of rule about a file whose path ends in file.
func wantRule(t *testing.T, r *signing.Result, rule, file string) {
	t.Helper()
	if r.OK() {
		t.Fatalf("tampered model verified")
	}
	for _, f := range r.Findings() {
		if f.Rule == rule && (file == "" || strings.HasSuffix(f.Subject.Name, file)) {
			return
		}
	}
	t.Fatalf("no %s finding for %q in %+v", rule, file, r.Findings())
}

func TestVectorsTampered(t *testing.T) {
	otherKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	wrongKey, err := signing.NewKeyVerifier(&otherKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	wrongCA := signing.NewCertificateVerifier([]*x509.Certificate{selfSignedCA(t, "root-ca")})

	cases := []struct {
		name   string
		single bool // applies to single-file vectors too
		tamper func(t *testing.T, v *vector) (signing.Verifier, bool)
		rule   string
		file   string
	}{
		{"changed file", true, func(t *testing.T, v *vector) (signing.Verifier, bool) {
			appendTo(t, filepath.Join(v.dir, "signme-1"), "x")
			return nil, false
		}, signing.RuleFileChanged, "signme-1"},
		{"removed file", false, func(t *testing.T, v *vector) (signing.Verifier, bool) {
			if err := os.Remove(filepath.Join(v.dir, "signme-2")); err != nil {
				t.Fatal(err)
			}
			return nil, false
		}, signing.RuleFileMissing, "signme-2"},
		{"added file", false, func(t *testing.T, v *vector) (signing.Verifier, bool) {
			appendTo(t, filepath.Join(v.dir, "payload.pkl"), "evil")
			return nil, false
		}, signing.RuleFileUnsigned, "payload.pkl"},
		{"altered signature", true, func(t *testing.T, v *vector) (signing.Verifier, bool) {
			v.sig = alterBundle(t, v.sig, func(e map[string]any) {
				s := e["signatures"].([]any)[0].(map[string]any)
				raw, _ := base64.StdEncoding.DecodeString(s["sig"].(string))
				raw[len(raw)-3] ^= 0x01
				s["sig"] = base64.StdEncoding.EncodeToString(raw)
			})
			return nil, false
		}, signing.RuleSignatureInvalid, ""},
		{"altered payload", true, func(t *testing.T, v *vector) (signing.Verifier, bool) {
			v.sig = alterBundle(t, v.sig, func(e map[string]any) {
				raw, _ := base64.StdEncoding.DecodeString(e["payload"].(string))
				// Change one digest nibble: the DSSE signature no longer covers it.
				i := strings.Index(string(raw), `"sha256": "`) + len(`"sha256": "`)
				if raw[i] == '0' {
					raw[i] = '1'
				} else {
					raw[i] = '0'
				}
				e["payload"] = base64.StdEncoding.EncodeToString(raw)
			})
			return nil, false
		}, signing.RuleSignatureInvalid, ""},
		{"wrong key or CA", true, func(t *testing.T, v *vector) (signing.Verifier, bool) {
			if v.isCert {
				return wrongCA, true
			}
			return wrongKey, true
		}, signing.RuleSignatureInvalid, ""},
	}
	for _, name := range vectorNames(t) {
		for _, c := range cases {
			if singleFileVectors[name] && !c.single {
				continue
			}
			t.Run(name+"/"+c.name, func(t *testing.T) {
				v := copyVector(t, name)
				ver, replaced := c.tamper(t, &v)
				if !replaced {
					ver = verifierFor(t, v)
				}
				wantRule(t, verifyVector(t, v, ver, v.sig), c.rule, c.file)
			})
		}
	}
}

func TestVectorSingleFileRemoved(t *testing.T) {
	v := copyVector(t, "v1.0.0-elliptic-key")
	if err := os.Remove(v.model); err != nil {
		t.Fatal(err)
	}
	_, err := signing.VerifyDir(context.Background(), v.model, v.sig, vectorKeyVerifier(t), signing.VerifyOptions{})
	if err == nil || !strings.Contains(err.Error(), "signme-1") {
		t.Fatalf("VerifyDir on a removed single-file model: err %v, want one naming signme-1", err)
	}
}

func appendTo(t *testing.T, p, s string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// alterBundle edits the dsseEnvelope of a bundle through a generic JSON tree.
func alterBundle(t *testing.T, sig []byte, edit func(env map[string]any)) []byte {
	t.Helper()
	var b map[string]any
	if err := json.Unmarshal(sig, &b); err != nil {
		t.Fatal(err)
	}
	edit(b["dsseEnvelope"].(map[string]any))
	out, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func selfSignedCA(t *testing.T, cn string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
