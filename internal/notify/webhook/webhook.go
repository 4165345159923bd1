// Package webhook posts notifications as Alertmanager webhook payloads (version "4"), signed with
// HMAC-SHA256 when a secret is configured.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/pipewarden/pipewarden/internal/notify"
)

// Headers set on every request.
const (
	HeaderSignature   = "X-Pipewarden-Signature" // "sha256=" + hex HMAC of timestamp + "." + body
	HeaderTimestamp   = "X-Pipewarden-Timestamp" // Unix seconds
	HeaderIdempotency = "Idempotency-Key"
)

// Config configures a webhook receiver.
type Config struct {
	URL string `yaml:"url"`
	// Secret, when set, signs each request (HeaderSignature).
	Secret  string        `yaml:"secret"`
	Timeout time.Duration `yaml:"timeout"`
	// MaxAlerts truncates the alert list (0: no limit); the payload says how many were left out.
	MaxAlerts int `yaml:"max_alerts"`
}

// Notifier posts to one URL.
type Notifier struct {
	c   Config
	hc  *http.Client
	now func() time.Time
}

// New returns a webhook notifier; hc and now may be nil.
func New(c Config, hc *http.Client, now func() time.Time) *Notifier {
	if hc == nil {
		hc = &http.Client{}
	}
	if now == nil {
		now = time.Now
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	return &Notifier{c: c, hc: hc, now: now}
}

// Sign returns the signature header value for a body sent at ts (Unix seconds).
func Sign(secret string, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a request's signature in constant time; receivers call it with the headers.
func Verify(secret, ts string, body []byte, signature string) bool {
	return hmac.Equal([]byte(Sign(secret, ts, body)), []byte(signature))
}

// Notify posts the message.
func (n *Notifier) Notify(ctx context.Context, key string, m *notify.Message) error {
	msg := *m
	if n.c.MaxAlerts > 0 && len(msg.Alerts) > n.c.MaxAlerts {
		msg.TruncatedAlerts = len(msg.Alerts) - n.c.MaxAlerts
		msg.Alerts = msg.Alerts[:n.c.MaxAlerts]
	}
	body, err := json.Marshal(&msg)
	if err != nil {
		return notify.Permanent(err)
	}
	return Post(ctx, n.hc, n.c.URL, n.c.Secret, key, body, n.c.Timeout, n.now)
}

// Post sends a signed JSON body; the respond package's webhook action uses it too.
func Post(ctx context.Context, hc *http.Client, url, secret, key string, body []byte, timeout time.Duration, now func() time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return notify.Permanent(fmt.Errorf("webhook %s: %w", url, err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "pipewarden")
	if key != "" {
		req.Header.Set(HeaderIdempotency, key)
	}
	if secret != "" {
		ts := strconv.FormatInt(now().Unix(), 10)
		req.Header.Set(HeaderTimestamp, ts)
		req.Header.Set(HeaderSignature, Sign(secret, ts, body))
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", url, err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return notify.StatusError("webhook "+url, resp.StatusCode, rb)
}
