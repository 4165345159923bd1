package app

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/pipewarden/pipewarden/internal/config"
	"github.com/pipewarden/pipewarden/internal/httpapi"
	"github.com/pipewarden/pipewarden/internal/store"
)

// NewToken returns a new random secret and its hex SHA-256, the only form that is stored.
func NewToken() (secret, hash string) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	secret = "pw_" + base64.RawURLEncoding.EncodeToString(b[:])
	return secret, HashToken(secret)
}

// HashToken is the hex SHA-256 of a token secret.
func HashToken(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

type tokenStore interface {
	LookupToken(ctx context.Context, hash string) (store.Token, error)
}

// authenticator checks tokens from the config file first, then the store; positive store
// answers are cached briefly so ingestion does not read the database per request.
type authenticator struct {
	static map[string]httpapi.Principal
	st     tokenStore

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	p   httpapi.Principal
	exp time.Time
}

const tokenCacheTTL = 30 * time.Second

func newAuthenticator(tokens []config.Token, st tokenStore) *authenticator {
	a := &authenticator{static: map[string]httpapi.Principal{}, st: st, cache: map[string]cached{}}
	for _, t := range tokens {
		a.static[t.SHA256] = httpapi.Principal{Name: t.Name, Role: t.Role}
	}
	return a
}

func (a *authenticator) Authenticate(ctx context.Context, token string) (httpapi.Principal, error) {
	h := HashToken(token)
	if p, ok := a.static[h]; ok {
		return p, nil
	}
	now := time.Now()
	a.mu.Lock()
	c, ok := a.cache[h]
	a.mu.Unlock()
	if ok && now.Before(c.exp) {
		return c.p, nil
	}
	t, err := a.st.LookupToken(ctx, h)
	if errors.Is(err, store.ErrNotFound) {
		return httpapi.Principal{}, httpapi.ErrUnauthenticated
	}
	if err != nil {
		return httpapi.Principal{}, err
	}
	p := httpapi.Principal{Name: t.Name, Role: t.Role}
	a.mu.Lock()
	if len(a.cache) > 10000 {
		clear(a.cache)
	}
	a.cache[h] = cached{p: p, exp: now.Add(tokenCacheTTL)}
	a.mu.Unlock()
	return p, nil
}

// bootstrapToken creates an admin token on first start when no token exists anywhere, writes
// it to <data_dir>/admin.token (0600) and prints the path, never the token.
func (a *App) bootstrapToken(ctx context.Context) error {
	if len(a.cfg.Auth.Tokens) > 0 {
		return nil
	}
	n, err := a.store.CountTokens(ctx)
	if err != nil {
		return fmt.Errorf("count tokens: %w", err)
	}
	path := TokenFile(a.cfg.DataDir)
	if n > 0 {
		if _, err := os.Stat(path); err == nil {
			fmt.Fprintf(a.out, "admin token: %s\n", path)
		}
		return nil
	}
	secret, hash := NewToken()
	if err := writePrivate(path, []byte(secret+"\n")); err != nil {
		return fmt.Errorf("write admin token: %w", err)
	}
	if err := a.store.CreateToken(ctx, store.Token{Name: "admin (created at first start)", Role: store.RoleAdmin, Hash: hash, CreatedAt: a.now()}); err != nil {
		os.Remove(path)
		return fmt.Errorf("store admin token: %w", err)
	}
	a.log.Info("created admin token", "file", path)
	fmt.Fprintf(a.out, "created an admin token in %s (mode 0600); use it as: Authorization: Bearer $(cat %s)\n", path, path)
	return nil
}

// writePrivate writes a file only its owner can read, replacing any older one atomically.
func writePrivate(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
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
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
