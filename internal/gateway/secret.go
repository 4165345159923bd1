package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

const secretFile = "gateway.secret"

// loadOrCreateSecret returns the deployment's detector secret, creating it on first start. It
// keys the Blacklight hashes, so it is random per deployment and never a fixed seed; without a
// data directory it lives as long as the process.
func loadOrCreateSecret(dir string) ([]byte, error) {
	if dir == "" {
		return randomBytes(32)
	}
	p := filepath.Join(dir, secretFile)
	raw, err := os.ReadFile(p)
	if err == nil {
		s, derr := hex.DecodeString(strings.TrimSpace(string(raw)))
		if derr != nil || len(s) < 16 {
			return nil, fmt.Errorf("gateway secret %q: not 16 or more hex-encoded bytes (remove it to create a new one)", p)
		}
		return s, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read gateway secret %q: %w", p, err)
	}
	s, err := randomBytes(32)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("gateway data dir %q: %w", dir, err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create gateway secret %q: %w", p, err)
	}
	defer f.Close()
	if _, err := f.WriteString(hex.EncodeToString(s) + "\n"); err != nil {
		return nil, fmt.Errorf("write gateway secret %q: %w", p, err)
	}
	return s, nil
}

func randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("random secret: %w", err)
	}
	return b, nil
}
