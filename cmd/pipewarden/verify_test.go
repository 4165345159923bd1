package main

import (
	"crypto/elliptic"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

func TestVerifyVectorsFromTheCommandLine(t *testing.T) {
	keys := filepath.Join(omsVectors, "keys", "certificate")
	trustedRoot := "../../internal/signing/sigstore/testdata/trusted-root-public-good.json"
	cases := []struct {
		name   string
		vector string
		model  string // below the vector dir; "" is the dir itself
		trust  []string
	}{
		{"key v1.1.0", "v1.1.0-elliptic-key", "", []string{"--key", filepath.Join(keys, "signing-key-pub.pem")}},
		{"key v1.0.0 single file", "v1.0.0-elliptic-key", "signme-1", []string{"--key", filepath.Join(keys, "signing-key-pub.pem")}},
		{"certificate v0.2.0 legacy", "v0.2.0-certificate", "", []string{"--cert-chain", filepath.Join(keys, "ca-cert.pem")}},
		{"certificate v1.1.0", "v1.1.0-certificate", "", []string{"--cert-chain", filepath.Join(keys, "ca-cert.pem")}},
		{"sigstore v1.1.0", "v1.1.0-sigstore", "", []string{"--trusted-root", trustedRoot,
			"--identity", "stefanb@us.ibm.com", "--issuer", "https://sigstore.verify.ibm.com/oauth2"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(omsVectors, c.vector)
			model := dir
			if c.model != "" {
				model = filepath.Join(dir, c.model)
			}
			args := append([]string{"verify", model, "--signature", filepath.Join(dir, "model.sig"),
				"--ignore-paths", filepath.Join(dir, "ignore-me"), "--format", "json"}, c.trust...)
			code, out, errOut := runCLI(t, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s%s", code, out, errOut)
			}
			var r struct {
				Summary struct {
					Extra map[string]any `json:"extra"`
				} `json:"summary"`
			}
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatal(err)
			}
			if r.Summary.Extra["verified"] != true || r.Summary.Extra["signer"] == nil {
				t.Fatalf("summary does not say verified by whom: %v", r.Summary.Extra)
			}
		})
	}
}

func TestVerifyUsageAndSignatureErrors(t *testing.T) {
	keys := filepath.Join(omsVectors, "keys", "certificate")
	pub := filepath.Join(keys, "signing-key-pub.pem")
	dir := filepath.Join(omsVectors, "v1.1.0-elliptic-key")
	sig := filepath.Join(dir, "model.sig")
	notASig := filepath.Join(omsVectors, "LICENSE")
	// v1.0.1 records no ignore paths, so its ignore-me counts unless ignored on the command line.
	old := filepath.Join(omsVectors, "v1.0.1-elliptic-key")
	oldSig := filepath.Join(old, "model.sig")
	_, otherPub := testKeys(t, elliptic.P384(), false)
	cases := []struct {
		name string
		args []string
		code int
		out  string // in stdout (code 1) or stderr (code 2)
	}{
		{"no trust", []string{"verify", dir, "--signature", sig}, 2, "exactly one of --key, --cert-chain or --trusted-root"},
		{"two trusts", []string{"verify", dir, "--signature", sig, "--key", pub, "--cert-chain", pub}, 2, "exactly one"},
		{"no signature flag", []string{"verify", dir, "--key", pub}, 2, "signature"},
		{"missing signature", []string{"verify", dir, "--signature", "/no/model.sig", "--key", pub}, 2, "/no/model.sig"},
		{"missing model", []string{"verify", "/no/model", "--signature", sig, "--key", pub}, 2, "/no/model"},
		{"key is not a key", []string{"verify", dir, "--signature", sig, "--key", notASig}, 2, "no PUBLIC KEY PEM block"},
		{"CA is not a certificate", []string{"verify", dir, "--signature", sig, "--cert-chain", pub}, 2, "no CERTIFICATE PEM block"},
		{"identity without trusted root", []string{"verify", dir, "--signature", sig, "--key", pub, "--identity", "a@b"}, 2, "--trusted-root"},
		{"trusted root without identity", []string{"verify", dir, "--signature", sig, "--trusted-root", notASig}, 2, "--identity and --issuer"},
		{"bad format", []string{"verify", dir, "--signature", sig, "--key", pub, "--format", "yaml"}, 2, "--format"},
		{"signature is not a bundle", []string{"verify", dir, "--signature", notASig, "--key", pub}, 1, "signing.signature-invalid"},
		{"wrong key", []string{"verify", dir, "--signature", sig, "--key", otherPub}, 1, "the bundle names public key e8450dec"},
		{"key vector against a CA", []string{"verify", dir, "--signature", sig, "--cert-chain", filepath.Join(keys, "ca-cert.pem")}, 1, "carries no certificate"},
		{"unignored extra file", []string{"verify", old, "--signature", oldSig, "--key", pub}, 1, "ignore-me"},
		{"sarif output", []string{"verify", old, "--signature", oldSig, "--key", pub, "--format", "sarif"}, 1, `"ruleId": "signing.file-unsigned"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, c.args...)
			got := out
			if c.code == 2 {
				got = errOut
			}
			if code != c.code || !strings.Contains(got, c.out) {
				t.Fatalf("exit %d, want %d with %q\nstdout: %s\nstderr: %s", code, c.code, c.out, out, errOut)
			}
		})
	}
}
