package signing_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pipewarden/pipewarden/internal/signing"
)

// pyOrder is the key order OMS's protobuf JSON gives the fixed messages. Struct-valued objects
// (the predicate and below) come out in arbitrary order upstream, so the test puts both sides in
// this order before comparing bytes.
// Resource descriptors of the predicate are written algorithm, digest, name as upstream's
// examples show; the subject's resource descriptor is a protobuf message (name, digest).
var pyOrder = map[string][]string{
	"":              {"_type", "subject", "predicateType", "predicate"},
	"subject":       {"name", "digest"},
	"predicate":     {"serialization", "resources"},
	"serialization": {"method", "hash_type", "allow_symlinks", "shard_size", "ignore_paths"},
	"resources":     {"algorithm", "digest", "name"},
}

// canonPayload re-emits a payload as Python's json.dumps(indent=2) would, with object keys in
// pyOrder and the ignore_paths set sorted. It is independent of the package's encoder.
func canonPayload(t *testing.T, payload []byte) string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("payload is not JSON: %v", err)
	}
	var b strings.Builder
	emitPy(&b, v, "", "")
	return b.String()
}

func emitPy(b *strings.Builder, v any, indent, key string) {
	switch t := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		order := pyOrder[key]
		slices.SortFunc(keys, func(a, c string) int {
			if i, j := slices.Index(order, a), slices.Index(order, c); i != j {
				return i - j
			}
			return strings.Compare(a, c)
		})
		b.WriteString("{\n")
		for i, k := range keys {
			fmt.Fprintf(b, "%s  %q: ", indent, k)
			emitPy(b, t[k], indent+"  ", k) // arrays pass the key on to their elements
			if i < len(keys)-1 {
				b.WriteString(",")
			}
			b.WriteString("\n")
		}
		b.WriteString(indent + "}")
	case []any:
		if len(t) == 0 {
			b.WriteString("[]")
			return
		}
		if key == "ignore_paths" {
			slices.SortFunc(t, func(a, c any) int { return strings.Compare(a.(string), c.(string)) })
		}
		b.WriteString("[\n")
		for i, e := range t {
			b.WriteString(indent + "  ")
			emitPy(b, e, indent+"  ", key)
			if i < len(t)-1 {
				b.WriteString(",")
			}
			b.WriteString("\n")
		}
		b.WriteString(indent + "]")
	case string:
		fmt.Fprintf(b, "%q", t)
	case bool:
		fmt.Fprintf(b, "%t", t)
	case json.Number:
		b.WriteString(t.String())
	case nil:
		b.WriteString("null")
	}
}

type bundleView struct {
	VerificationMaterial json.RawMessage `json:"verificationMaterial"`
	DSSEEnvelope         struct {
		Payload    []byte `json:"payload"`
		Signatures []struct {
			Sig []byte `json:"sig"`
		} `json:"signatures"`
	} `json:"dsseEnvelope"`
}

func viewBundle(t *testing.T, b []byte) bundleView {
	t.Helper()
	var v bundleView
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestSignMatchesVectors signs copies of the v1.1.0 vectors with the vectors' own key and
// certificate and checks our signature is the vectors' signature byte for byte, but for the
// ECDSA signature value (randomized) and the order of unordered JSON objects and sets.
func TestSignMatchesVectors(t *testing.T) {
	key, err := signing.LoadPrivateKey(readFile(t, filepath.Join(vectorsDir, "keys/certificate/signing-key.pem")))
	if err != nil {
		t.Fatal(err)
	}
	certs, err := signing.LoadCertificates(readFile(t, filepath.Join(vectorsDir, "keys/certificate/signing-key-cert.pem")))
	if err != nil {
		t.Fatal(err)
	}
	chain, err := signing.LoadCertificates(readFile(t, filepath.Join(vectorsDir, "keys/certificate/int-ca-cert.pem")))
	if err != nil {
		t.Fatal(err)
	}
	certSigner, err := signing.NewCertificateSigner(key, certs[0], chain)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		vector string
		signer signing.Signer
	}{
		{"v1.1.0-elliptic-key", signing.NewKeySigner(key)},
		{"v1.1.0-certificate", certSigner},
	}
	for _, c := range cases {
		t.Run(c.vector, func(t *testing.T) {
			v := copyVector(t, c.vector)
			ours, _, err := signing.SignDir(context.Background(), v.dir, c.signer,
				signing.Options{IgnorePaths: []string{"ignore-me", "model.sig"}})
			if err != nil {
				t.Fatal(err)
			}
			theirs, mine := viewBundle(t, v.sig), viewBundle(t, ours)

			// The payload: same statement, same formatting.
			if got, want := canonPayload(t, mine.DSSEEnvelope.Payload), canonPayload(t, theirs.DSSEEnvelope.Payload); got != want {
				t.Errorf("payload differs from the vector's\n got: %s\nwant: %s", got, want)
			}
			if got := string(mine.DSSEEnvelope.Payload); got != canonPayload(t, mine.DSSEEnvelope.Payload) {
				t.Errorf("our payload is not in OMS's byte layout:\n%s", got)
			}
			// The bundle: identical once the payload and signature values are swapped in.
			swapped := strings.Replace(string(ours), base64.StdEncoding.EncodeToString(mine.DSSEEnvelope.Payload),
				base64.StdEncoding.EncodeToString(theirs.DSSEEnvelope.Payload), 1)
			swapped = strings.Replace(swapped, base64.StdEncoding.EncodeToString(mine.DSSEEnvelope.Signatures[0].Sig),
				base64.StdEncoding.EncodeToString(theirs.DSSEEnvelope.Signatures[0].Sig), 1)
			if swapped != string(v.sig) {
				t.Errorf("bundle layout differs from the vector's\n got: %s\nwant: %s", swapped, v.sig)
			}
			// And it verifies, with our verifier, as the vector does.
			r := verifyVector(t, v, verifierFor(t, v), ours)
			if !r.OK() {
				t.Fatalf("our signature does not verify: %v %+v %v", r.SignatureErr, r.Diff, r.Problems)
			}
		})
	}
}

// TestDecodedVectorPayloads checks the decoder reads every vector's statement into the manifest
// the upstream scripts expect: the signed files and their digests.
func TestDecodedVectorPayloads(t *testing.T) {
	signme1 := "f6310066c7320497ea554260c32c43660bff648cb2a61194832cc086077085e1"
	signme1Key := "bc9a717db6064a32cbe9eae6fc40651dd6d36ef1757183f590eff2b1765d7ebc"
	signme2 := "32dcb1f8e1ae52d5963e56a6ba06ab58b424c15ed2a6b70d2feca1d089370028"
	want := map[string][]string{
		"v0.2.0-certificate":  {"signme-1=" + signme1, "signme-2=" + signme2},
		"v0.3.1-certificate":  {"signme-1=" + signme1, "signme-2=" + signme2},
		"v0.3.1-elliptic-key": {".=" + signme1Key},
		"v1.0.0-certificate":  {"signme-1=" + signme1, "signme-2=" + signme2},
		"v1.0.0-elliptic-key": {".=" + signme1Key},
		"v1.0.1-certificate":  {"signme-1=" + signme1, "signme-2=" + signme2},
		"v1.0.1-elliptic-key": {"signme-1=" + signme1Key, "signme-2=" + signme2},
		"v1.1.0-certificate":  {"signme-1=" + signme1, "signme-2=" + signme2},
		"v1.1.0-elliptic-key": {"signme-1=" + signme1Key, "signme-2=" + signme2},
	}
	for _, name := range vectorNames(t) {
		t.Run(name, func(t *testing.T) {
			b, err := signing.ParseBundle(readFile(t, filepath.Join(vectorsDir, name, "model.sig")))
			if err != nil {
				t.Fatal(err)
			}
			m, err := signing.DecodeStatement(b.DSSEEnvelope.Payload)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range m.Resources {
				got = append(got, fmt.Sprintf("%s=%x", r.Name, r.Digest))
			}
			if !slices.Equal(got, want[name]) {
				t.Fatalf("resources %v, want %v", got, want[name])
			}
		})
	}
}
