package signing_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pipewarden/pipewarden/internal/signing"
)

// statement builds a v1.0 payload whose subject digest matches the resources unless rootHex is
// given.
func statement(serialization string, resources [][3]string, rootHex string) []byte {
	var rs []string
	h := sha256.New()
	for _, r := range resources {
		d, _ := hex.DecodeString(r[2])
		h.Write(d)
		rs = append(rs, fmt.Sprintf(`{"name":%q,"algorithm":%q,"digest":%q}`, r[0], r[1], r[2]))
	}
	if rootHex == "" {
		rootHex = hex.EncodeToString(h.Sum(nil))
	}
	return fmt.Appendf(nil, `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"m","digest":{"sha256":%q}}],
"predicateType":"https://model_signing/signature/v1.0","predicate":{"serialization":%s,"resources":[%s],"model_card":{"x":1}}}`,
		rootHex, serialization, strings.Join(rs, ","))
}

func TestDecodeStatement(t *testing.T) {
	d1 := hex.EncodeToString(sum("1"))
	d2 := hex.EncodeToString(sum("2"))
	files := `{"method":"files","hash_type":"sha256","allow_symlinks":false}`
	cases := []struct {
		name      string
		payload   []byte
		wantNames []string
		wantShard int64
		wantErr   string
	}{
		{"files, unknown predicate fields ignored", statement(files, [][3]string{{"b", "sha256", d2}, {"a", "sha256", d1}}, ""), []string{"a", "b"}, 0, ""},
		{"shard size as a float", statement(`{"method":"shards","hash_type":"sha256","allow_symlinks":true,"shard_size":8.0}`,
			[][3]string{{"w:8:9", "sha256-sharded-8", d2}, {"w:0:8", "sha256-sharded-8", d1}}, ""), []string{"w:0:8", "w:8:9"}, 8, ""},
		{"shard size as an integer", statement(`{"method":"shards","hash_type":"sha256","allow_symlinks":true,"shard_size":1000000000}`,
			nil, ""), nil, 1_000_000_000, ""},
		{"fractional shard size", statement(`{"method":"shards","hash_type":"sha256","allow_symlinks":true,"shard_size":8.5}`, nil, ""), nil, 0, "shard_size"},
		{"legacy v0.1 predicate", fmt.Appendf(nil, `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"b","digest":{"sha256":%q}},{"name":"a","digest":{"sha256":%q}}],"predicateType":"https://model_signing/Digests/v0.1","predicate":{"unused":"x"}}`, d2, d1),
			[]string{"a", "b"}, 0, ""},
		{"root digest mismatch", statement(files, [][3]string{{"a", "sha256", d1}}, d2), nil, 0, "resources hash to"},
		{"path traversal", statement(files, [][3]string{{"../etc/passwd", "sha256", d1}}, ""), nil, 0, "not a clean relative path"},
		{"absolute name", statement(files, [][3]string{{"/etc/passwd", "sha256", d1}}, ""), nil, 0, "not a clean relative path"},
		{"duplicate name", statement(files, [][3]string{{"a", "sha256", d1}, {"a", "sha256", d1}}, ""), nil, 0, "listed twice"},
		{"non-hex digest", statement(files, [][3]string{{"a", "sha256", "zz"}}, ""), nil, 0, "not hex"},
		{"unsupported hash", statement(`{"method":"files","hash_type":"blake3","allow_symlinks":false}`, nil, ""), nil, 0, "blake3"},
		{"unknown predicate type", []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"https://slsa.dev/provenance/v1","predicate":{}}`), nil, 0, "predicateType"},
		{"not a statement", []byte(`{"_type":"x"}`), nil, 0, "_type"},
		{"not JSON", []byte(`{`), nil, 0, "invalid model signing statement"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := signing.DecodeStatement(c.payload)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) || !errors.Is(err, signing.ErrStatement) {
					t.Fatalf("err %v, want ErrStatement mentioning %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(names(m), ","); got != strings.Join(c.wantNames, ",") {
				t.Fatalf("resources %s, want %v", got, c.wantNames)
			}
			if m.Serialization.ShardSize != c.wantShard {
				t.Fatalf("shard size %d, want %d", m.Serialization.ShardSize, c.wantShard)
			}
		})
	}
}

func TestEncodeStatementRoundTrip(t *testing.T) {
	m := &signing.Manifest{ModelName: "modèle-🚀", Serialization: signing.Serialization{
		Method: signing.MethodShards, HashType: "sha256", ShardSize: 8, IgnorePaths: []string{".git", "model.sig"}},
		Resources: []signing.Resource{{Name: "poids/é:0:8", Algorithm: "sha256-sharded-8", Digest: sum("x")}}}
	b, err := signing.EncodeStatement(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"shard_size": 8.0`, `"name": "mod\u00e8le-\ud83d\ude80"`, `"poids/\u00e9:0:8"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("payload lacks %s:\n%s", want, b)
		}
	}
	for _, c := range b {
		if c >= 0x80 {
			t.Fatalf("payload is not ASCII as OMS writes it:\n%s", b)
		}
	}
	back, err := signing.DecodeStatement(b)
	if err != nil {
		t.Fatal(err)
	}
	if back.ModelName != m.ModelName || back.Resources[0].Name != m.Resources[0].Name || back.Serialization.ShardSize != 8 {
		t.Fatalf("round trip %+v", back)
	}
}

func TestPublicKeyHintMatchesOMS(t *testing.T) {
	pub, err := signing.LoadPublicKey(readFile(t, filepath.Join(vectorsDir, "keys/certificate/signing-key-pub.pem")))
	if err != nil {
		t.Fatal(err)
	}
	hint, err := signing.PublicKeyHint(pub)
	if err != nil {
		t.Fatal(err)
	}
	// The hint model_signing 1.1.0 wrote into v1.1.0-elliptic-key/model.sig.
	if hint != "e8450dec4eb99dae995da9af1bc2cc9f76ed669ee2e744f57abba763df3e3f8e" {
		t.Fatalf("hint %s", hint)
	}
}

func TestLoadPrivateKey(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sec1, _ := x509.MarshalECPrivateKey(k)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(k)
	params := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}})
	cases := []struct {
		name, pem, wantErr string
	}{
		{"SEC1 after EC PARAMETERS (openssl ecparam -genkey)", string(params) + string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})), ""},
		{"PKCS#8", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})), ""},
		{"vector key", string(readFile(t, filepath.Join(vectorsDir, "keys/certificate/signing-key.pem"))), ""},
		{"encrypted", string(pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}})), "encrypted"},
		{"P-224 refused", p224(t), "P-224"},
		{"nothing", "hello", "no EC or PKCS#8 private key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := signing.LoadPrivateKey([]byte(c.pem))
			if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
				t.Fatalf("err %v, want %q", err, c.wantErr)
			}
		})
	}
}

func p224(t *testing.T) string {
	k, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
}

func TestParseBundleRejects(t *testing.T) {
	good := string(readFile(t, filepath.Join(vectorsDir, "v1.1.0-elliptic-key/model.sig")))
	cases := []struct{ name, bundle, want string }{
		{"other media type", strings.Replace(good, "bundle.v0.3+json", "bundle.v0.1+json", 1), "media type"},
		{"message signature", `{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{},"messageSignature":{}}`, "no dsseEnvelope"},
		{"other payload type", strings.Replace(good, `"payloadType":"application/vnd.in-toto+json"`, `"payloadType":"text/plain"`, 1), "payload type"},
		{"two signatures", strings.Replace(good, `"keyid":""}]`, `"keyid":""},{"sig":"AA==","keyid":""}]`, 1), "2 envelope signatures"},
		{"trailing data", good + "{}", "trailing data"},
		{"bad base64", strings.Replace(good, `"payload":"ew`, `"payload":"!!`, 1), "invalid signature bundle"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := signing.ParseBundle([]byte(c.bundle))
			if err == nil || !errors.Is(err, signing.ErrBundle) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want ErrBundle mentioning %q", err, c.want)
			}
		})
	}
	if _, err := signing.ParseBundle([]byte(good)); err != nil {
		t.Fatalf("vector bundle rejected: %v", err)
	}
}
