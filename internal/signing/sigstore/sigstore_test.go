package sigstore_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pipewarden/pipewarden/internal/signing"
	"github.com/pipewarden/pipewarden/internal/signing/sigstore"
)

const (
	vectorsDir  = "../../../../shared/fixtures/signing/model-transparency"
	trustedRoot = "testdata/trusted-root-public-good.json"
	identity    = "stefanb@us.ibm.com"
	issuer      = "https://sigstore.verify.ibm.com/oauth2"
)

func sigstoreVectors(t *testing.T) []string {
	t.Helper()
	ds, err := filepath.Glob(filepath.Join(vectorsDir, "v*-sigstore"))
	if err != nil || len(ds) < 4 {
		t.Fatalf("sigstore vectors: %v (%d found)", err, len(ds))
	}
	return ds
}

func verify(t *testing.T, dir string, v signing.Verifier, sig []byte) *signing.Result {
	t.Helper()
	r, err := signing.VerifyDir(context.Background(), dir, sig, v,
		signing.VerifyOptions{IgnorePaths: []string{"ignore-me", "model.sig"}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSigstoreVectors(t *testing.T) {
	good, err := sigstore.NewVerifier(trustedRoot, identity, issuer)
	if err != nil {
		t.Fatal(err)
	}
	otherIdentity, err := sigstore.NewVerifier(trustedRoot, "mallory@example.com", issuer)
	if err != nil {
		t.Fatal(err)
	}
	otherIssuer, err := sigstore.NewVerifier(trustedRoot, identity, "https://accounts.google.com")
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range sigstoreVectors(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			sig, err := os.ReadFile(filepath.Join(dir, "model.sig"))
			if err != nil {
				t.Fatal(err)
			}
			if r := verify(t, dir, good, sig); !r.OK() {
				t.Fatalf("vector does not verify: %v %+v %v", r.SignatureErr, r.Diff, r.Problems)
			} else if !strings.Contains(r.Signer, identity) {
				t.Errorf("signer %q does not name %s", r.Signer, identity)
			}
			cases := []struct {
				name string
				v    signing.Verifier
				sig  []byte
			}{
				{"other identity", otherIdentity, sig},
				{"other issuer", otherIssuer, sig},
				{"altered signature", good, flipSig(t, sig)},
			}
			for _, c := range cases {
				r := verify(t, dir, c.v, c.sig)
				if r.OK() || !errors.Is(r.SignatureErr, signing.ErrSignature) && !errors.Is(r.SignatureErr, signing.ErrBundle) {
					t.Errorf("%s: verified or wrong error: %v", c.name, r.SignatureErr)
				}
			}
		})
	}
}

// flipSig flips one bit of the DSSE signature value.
func flipSig(t *testing.T, sig []byte) []byte {
	t.Helper()
	var b map[string]any
	if err := json.Unmarshal(sig, &b); err != nil {
		t.Fatal(err)
	}
	s := b["dsseEnvelope"].(map[string]any)["signatures"].([]any)[0].(map[string]any)
	raw, err := base64.StdEncoding.DecodeString(s["sig"].(string))
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-2] ^= 1
	s["sig"] = base64.StdEncoding.EncodeToString(raw)
	out, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestNewVerifierErrors(t *testing.T) {
	cases := []struct {
		name, root, identity, issuer, want string
	}{
		{"no identity", trustedRoot, "", issuer, "identity"},
		{"missing root", "testdata/nope.json", identity, issuer, "nope.json"},
		{"not a trusted root", "../../../../shared/fixtures/signing/model-transparency/v1.1.0-sigstore/model.sig", identity, issuer, "trusted root"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := sigstore.NewVerifier(c.root, c.identity, c.issuer)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want one mentioning %q", err, c.want)
			}
		})
	}
}
