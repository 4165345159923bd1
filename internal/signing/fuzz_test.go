package signing_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pipewarden/pipewarden/internal/signing"
)

// FuzzParseSignature feeds arbitrary signature files through the bundle, DSSE and statement
// parsers: they must never panic, and whatever they accept must be a consistent manifest.
func FuzzParseSignature(f *testing.F) {
	sigs, _ := filepath.Glob(filepath.Join(vectorsDir, "v*", "model.sig"))
	for _, p := range sigs {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{},"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) > 1<<20 {
			t.Skip("bounded input")
		}
		b, err := signing.ParseBundle(raw)
		if err != nil {
			return
		}
		checkStatement(t, b.DSSEEnvelope.Payload)
	})
}

// FuzzDecodeStatement fuzzes the in-toto statement decoder directly, seeded with the vectors'
// decoded payloads.
func FuzzDecodeStatement(f *testing.F) {
	sigs, _ := filepath.Glob(filepath.Join(vectorsDir, "v*", "model.sig"))
	for _, p := range sigs {
		raw, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if b, err := signing.ParseBundle(raw); err == nil {
			f.Add(b.DSSEEnvelope.Payload)
		}
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		if len(payload) > 1<<20 {
			t.Skip("bounded input")
		}
		checkStatement(t, payload)
	})
}

func checkStatement(t *testing.T, payload []byte) {
	m, err := signing.DecodeStatement(payload)
	if err != nil {
		return
	}
	seen := map[string]bool{}
	for _, r := range m.Resources {
		if seen[r.Name] || len(r.Digest) == 0 {
			t.Fatalf("accepted a duplicate or empty resource %q", r.Name)
		}
		seen[r.Name] = true
		f := signing.FileOf(r, m.Serialization.Method)
		if f != "." && (filepath.IsAbs(f) || f == ".." || len(f) >= 3 && f[:3] == "../") {
			t.Fatalf("accepted a resource outside the model: %q", r.Name)
		}
	}
	// What we accept we can write back and read again.
	if m.Serialization.Method != "" && m.ModelName != signing.LegacyModelName {
		out, err := signing.EncodeStatement(m)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if _, err := signing.DecodeStatement(out); err != nil {
			t.Fatalf("re-decode of accepted statement: %v\n%s", err, out)
		}
	}
}
