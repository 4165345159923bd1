package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const omsVectors = "../../../shared/fixtures/signing/model-transparency"

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// testKeys writes a private key (SEC1 or PKCS#8) and its public key, returning their paths.
func testKeys(t *testing.T, curve elliptic.Curve, pkcs8 bool) (priv, pub string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var blk *pem.Block
	if pkcs8 {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		blk = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	} else {
		der, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		blk = &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	priv, pub = filepath.Join(dir, "key.pem"), filepath.Join(dir, "key.pub")
	writeFile(t, priv, pem.EncodeToMemory(blk))
	writeFile(t, pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
	return priv, pub
}

// testModel writes a small model directory with a nested file and git metadata.
func testModel(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "model")
	writeFile(t, filepath.Join(dir, "config.json"), []byte(`{"layers": 2}`))
	writeFile(t, filepath.Join(dir, "weights", "model.safetensors"), bytes.Repeat([]byte{7, 1, 2}, 5000))
	writeFile(t, filepath.Join(dir, ".git", "HEAD"), []byte("ref: refs/heads/main\n"))
	return dir
}

func findingRules(t *testing.T, jsonOut string) map[string][]string {
	t.Helper()
	var r struct {
		Findings []struct {
			Rule    string `json:"rule"`
			Subject struct {
				Name string `json:"name"`
			} `json:"subject"`
		} `json:"findings"`
	}
	if err := json.Unmarshal([]byte(jsonOut), &r); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, jsonOut)
	}
	out := map[string][]string{}
	for _, f := range r.Findings {
		out[f.Rule] = append(out[f.Rule], filepath.Base(f.Subject.Name))
	}
	return out
}

func TestSignThenVerifyDetectsTampering(t *testing.T) {
	keyCases := []struct {
		name  string
		curve elliptic.Curve
		pkcs8 bool
	}{
		{"P-256 SEC1", elliptic.P256(), false},
		{"P-384 PKCS#8", elliptic.P384(), true},
		{"P-521 SEC1", elliptic.P521(), false},
	}
	tamper := []struct {
		name   string
		edit   func(t *testing.T, dir string)
		extra  []string // extra verify flags
		code   int
		rule   string
		naming string
	}{
		{"untouched", func(*testing.T, string) {}, nil, 0, "", ""},
		{"git metadata changes are ignored", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, ".git", "HEAD"), []byte("other"))
		}, nil, 0, "", ""},
		{"changed file", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "weights", "model.safetensors"), []byte("replaced"))
		}, nil, 1, "signing.file-changed", "model.safetensors"},
		{"removed file", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "config.json")); err != nil {
				t.Fatal(err)
			}
		}, nil, 1, "signing.file-missing", "config.json"},
		{"added file", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "weights", "extra.pkl"), []byte("cos\nsystem\n"))
		}, nil, 1, "signing.file-unsigned", "extra.pkl"},
		{"added file with --ignore-unsigned-files", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "weights", "extra.pkl"), []byte("x"))
		}, []string{"--ignore-unsigned-files"}, 0, "", ""},
		{"added file below --fail-on critical", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "notes.txt"), []byte("x"))
		}, []string{"--fail-on", "critical"}, 0, "signing.file-unsigned", "notes.txt"},
		{"added file ignored by --ignore-paths", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "logs", "run.log"), []byte("x"))
		}, []string{"--ignore-paths", "LOGS"}, 0, "", ""},
	}
	for _, kc := range keyCases {
		priv, pub := testKeys(t, kc.curve, kc.pkcs8)
		for _, serialization := range []string{"files", "shards"} {
			for _, tc := range tamper {
				t.Run(kc.name+"/"+serialization+"/"+tc.name, func(t *testing.T) {
					dir := testModel(t)
					code, out, errOut := runCLI(t, "sign", dir, "--key", priv, "--serialization", serialization, "--shard-size", "4096")
					if code != 0 || !strings.Contains(out, "signed "+dir) {
						t.Fatalf("sign: exit %d\n%s%s", code, out, errOut)
					}
					tc.edit(t, dir)
					args := []string{"verify", dir, "--signature", filepath.Join(dir, "model.sig"), "--key", pub, "--format", "json"}
					for _, a := range tc.extra {
						args = append(args, strings.ReplaceAll(a, "LOGS", filepath.Join(dir, "logs")))
					}
					code, out, errOut = runCLI(t, args...)
					if code != tc.code {
						t.Fatalf("verify: exit %d, want %d\n%s%s", code, tc.code, out, errOut)
					}
					rules := findingRules(t, out)
					if tc.rule == "" {
						if len(rules) != 0 {
							t.Fatalf("unexpected findings %v", rules)
						}
						return
					}
					if got := rules[tc.rule]; len(got) != 1 || got[0] != tc.naming {
						t.Fatalf("findings %v, want one %s naming %s", rules, tc.rule, tc.naming)
					}
				})
			}
		}
	}
}

func TestSignUsageErrors(t *testing.T) {
	priv, _ := testKeys(t, elliptic.P256(), false)
	withLink := testModel(t)
	if err := os.Symlink("config.json", filepath.Join(withLink, "alias.json")); err != nil {
		t.Fatal(err)
	}
	rsaKey := filepath.Join(t.TempDir(), "rsa.pem")
	writeFile(t, rsaKey, []byte("-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAK\n-----END RSA PRIVATE KEY-----\n"))
	cases := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"missing model", []string{"sign", "/no/such/model", "--key", priv}, "/no/such/model"},
		{"missing key", []string{"sign", testModel(t), "--key", "/no/such/key.pem"}, "/no/such/key.pem"},
		{"no key flag", []string{"sign", testModel(t)}, "key"},
		{"not an EC key", []string{"sign", testModel(t), "--key", rsaKey}, "no EC or PKCS#8 private key"},
		{"symlink refused", []string{"sign", withLink, "--key", priv}, "alias.json: symbolic link refused"},
		{"bad serialization", []string{"sign", testModel(t), "--key", priv, "--serialization", "tensors"}, "--serialization"},
		{"chain without cert", []string{"sign", testModel(t), "--key", priv, "--cert-chain", "x.pem"}, "--cert-chain needs --cert"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, c.args...)
			if code != 2 || !strings.Contains(errOut, c.stderr) {
				t.Fatalf("exit %d, stderr %q, want 2 and %q (stdout %q)", code, errOut, c.stderr, out)
			}
		})
	}
	t.Run("symlink allowed", func(t *testing.T) {
		if code, out, errOut := runCLI(t, "sign", withLink, "--key", priv, "--allow-symlinks"); code != 0 {
			t.Fatalf("exit %d: %s%s", code, out, errOut)
		}
	})
}

func TestSignWithCertificateVerifiesWithCA(t *testing.T) {
	keys := filepath.Join(omsVectors, "keys", "certificate")
	dir := testModel(t)
	sig := filepath.Join(t.TempDir(), "model.sig")
	code, out, errOut := runCLI(t, "sign", dir, "--key", filepath.Join(keys, "signing-key.pem"),
		"--cert", filepath.Join(keys, "signing-key-cert.pem"), "--cert-chain", filepath.Join(keys, "int-ca-cert.pem"), "--signature", sig)
	if code != 0 {
		t.Fatalf("sign: exit %d: %s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "verify", dir, "--signature", sig, "--cert-chain", filepath.Join(keys, "ca-cert.pem"))
	if code != 0 || !strings.Contains(out, "no findings") {
		t.Fatalf("verify with the CA: exit %d: %s%s", code, out, errOut)
	}
	// The signing certificate's own key does not make the public key of another signer valid.
	_, otherPub := testKeys(t, elliptic.P384(), false)
	code, out, _ = runCLI(t, "verify", dir, "--signature", sig, "--key", otherPub)
	if code != 1 || !strings.Contains(out, "signing.signature-invalid") {
		t.Fatalf("verify with another key: exit %d: %s", code, out)
	}
	// A certificate that does not match the key is refused.
	otherPriv, _ := testKeys(t, elliptic.P384(), false)
	code, _, errOut = runCLI(t, "sign", dir, "--key", otherPriv, "--cert", filepath.Join(keys, "signing-key-cert.pem"))
	if code != 2 || !strings.Contains(errOut, "does not match the private key") {
		t.Fatalf("sign with a mismatched certificate: exit %d: %s", code, errOut)
	}
}
