package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Checkpoint is a signed statement of the log's size and root hash, in the C2SP tlog-checkpoint
// body format (origin, size, base64 root hash, then extension lines; ours is "time <RFC 3339>")
// inside a C2SP signed note.
type Checkpoint struct {
	Origin string
	Size   int64
	Hash   tlog.Hash
	Time   time.Time
	Note   []byte // the signed note, exactly as stored and witnessed
}

const maxNoteSize = 16 << 10

func formatCheckpointBody(origin string, size int64, h tlog.Hash, t time.Time) string {
	return fmt.Sprintf("%s\n%d\n%s\ntime %s\n", origin, size, base64.StdEncoding.EncodeToString(h[:]), t.UTC().Format(time.RFC3339Nano))
}

// parseCheckpointBody reads a checkpoint body (untrusted).
func parseCheckpointBody(text string) (Checkpoint, error) {
	var c Checkpoint
	if len(text) > maxNoteSize || !strings.HasSuffix(text, "\n") {
		return c, errors.New("checkpoint: malformed body")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 3 || lines[0] == "" {
		return c, errors.New("checkpoint: want origin, size and root hash lines")
	}
	c.Origin = lines[0]
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return c, fmt.Errorf("checkpoint: invalid size %q", lines[1])
	}
	c.Size = size
	h, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(h) != tlog.HashSize {
		return c, fmt.Errorf("checkpoint: invalid root hash %q", lines[2])
	}
	copy(c.Hash[:], h)
	for _, l := range lines[3:] {
		if l == "" {
			return c, errors.New("checkpoint: empty extension line")
		}
		if ts, ok := strings.CutPrefix(l, "time "); ok {
			if c.Time, err = time.Parse(time.RFC3339Nano, ts); err != nil {
				return c, fmt.Errorf("checkpoint: time: %w", err)
			}
		}
	}
	return c, nil
}

// Signature errors callers branch on.
var (
	// ErrUnknownKey: the checkpoint carries no signature by the trusted key (another key signed it).
	ErrUnknownKey = errors.New("not signed by the trusted key")
	// ErrBadSignature: the trusted key's signature line is present but does not verify.
	ErrBadSignature = errors.New("signature does not verify")
)

// OpenCheckpoint verifies a signed checkpoint with the verifier key vkey and parses it.
func OpenCheckpoint(signed []byte, vkey string) (Checkpoint, error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("verifier key: %w", err)
	}
	return openCheckpoint(signed, v)
}

func openCheckpoint(signed []byte, v note.Verifier) (Checkpoint, error) {
	if len(signed) > maxNoteSize {
		return Checkpoint{}, fmt.Errorf("checkpoint of %d bytes exceeds %d", len(signed), maxNoteSize)
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		var unv *note.UnverifiedNoteError
		var inv *note.InvalidSignatureError
		switch {
		case errors.As(err, &unv):
			return Checkpoint{}, ErrUnknownKey
		case errors.As(err, &inv):
			return Checkpoint{}, ErrBadSignature
		}
		return Checkpoint{}, fmt.Errorf("checkpoint: %w", err)
	}
	c, err := parseCheckpointBody(n.Text)
	if err != nil {
		return c, err
	}
	if c.Origin != v.Name() {
		return c, fmt.Errorf("checkpoint origin %q is not the key name %q", c.Origin, v.Name())
	}
	c.Note = signed
	return c, nil
}

// Files of a log directory.
const (
	recordsFile     = "records"
	offsetsFile     = "offsets"
	hashesFile      = "hashes"
	checkpointsFile = "checkpoints"
	keyFile         = "key"
	pubKeyFile      = "key.pub"
)

// noteLine is one line of a checkpoints or witness file: {"note": signed note} or, first in a
// witness file, {"key": verifier key} pinning the key the witness accepts.
type noteLine struct {
	Key  string `json:"key,omitempty"`
	Note string `json:"note,omitempty"`
}

func marshalNoteLine(l noteLine) []byte {
	b, _ := json.Marshal(l) // strings only: cannot fail
	return append(b, '\n')
}

func parseNoteLine(b []byte) (noteLine, error) {
	var l noteLine
	if len(b) > 2*maxNoteSize {
		return l, fmt.Errorf("line of %d bytes is too long", len(b))
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&l); err != nil {
		return l, err
	}
	if (l.Key == "") == (l.Note == "") {
		return l, errors.New(`want exactly one of "key" and "note"`)
	}
	return l, nil
}

// loadOrCreateKey reads the log's signing key, creating it (0600) on first start.
func loadOrCreateKey(dir string) (note.Signer, string, error) {
	path := filepath.Join(dir, keyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		var suffix [4]byte
		if _, err := rand.Read(suffix[:]); err != nil {
			return nil, "", err
		}
		skey, vkey, err := note.GenerateKey(rand.Reader, "pipewarden/audit/"+hex.EncodeToString(suffix[:]))
		if err != nil {
			return nil, "", fmt.Errorf("generate audit key: %w", err)
		}
		if err := writeFileSync(path, []byte(skey+"\n"), 0o600); err != nil {
			return nil, "", fmt.Errorf("write audit key: %w", err)
		}
		if err := writeFileSync(filepath.Join(dir, pubKeyFile), []byte(vkey+"\n"), 0o644); err != nil {
			return nil, "", fmt.Errorf("write audit public key: %w", err)
		}
		b = []byte(skey + "\n")
	} else if err != nil {
		return nil, "", fmt.Errorf("read audit key: %w", err)
	}
	skey := strings.TrimSpace(string(b))
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, "", fmt.Errorf("audit key %s: %w", path, err)
	}
	vkey, err := verifierFromSigner(skey)
	if err != nil {
		return nil, "", fmt.Errorf("audit key %s: %w", path, err)
	}
	return s, vkey, nil
}

// verifierFromSigner derives the verifier key of an Ed25519 note signer key
// ("PRIVATE+KEY+<name>+<hash>+<base64(0x01 || seed)>").
func verifierFromSigner(skey string) (string, error) {
	rest, ok := strings.CutPrefix(skey, "PRIVATE+KEY+")
	parts := strings.SplitN(rest, "+", 3)
	if !ok || len(parts) != 3 {
		return "", errors.New("malformed signer key")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return "", errors.New("not an Ed25519 signer key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	return note.NewEd25519VerifierKey(parts[0], pub)
}

// ReadPublicKey returns the verifier key of the log in dir (from key.pub, or derived from key).
func ReadPublicKey(dir string) (string, error) {
	if b, err := os.ReadFile(filepath.Join(dir, pubKeyFile)); err == nil {
		vkey := strings.TrimSpace(string(b))
		if _, err := note.NewVerifier(vkey); err != nil {
			return "", fmt.Errorf("%s: %w", filepath.Join(dir, pubKeyFile), err)
		}
		return vkey, nil
	}
	b, err := os.ReadFile(filepath.Join(dir, keyFile))
	if err != nil {
		return "", err
	}
	return verifierFromSigner(strings.TrimSpace(string(b)))
}

func writeFileSync(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
