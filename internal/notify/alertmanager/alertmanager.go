// Package alertmanager pushes alerts to a Prometheus Alertmanager through its API
// (POST /api/v2/alerts), so teams keep their existing routing and receivers.
package alertmanager

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/pipewarden/pipewarden/internal/notify"
)

// Config configures an Alertmanager receiver.
type Config struct {
	// URL is Alertmanager's base URL, e.g. http://alertmanager:9093.
	URL     string        `yaml:"url"`
	Timeout time.Duration `yaml:"timeout"`
	// Resend sets endsAt on firing alerts to now+Resend, so Alertmanager resolves them if
	// pipewarden stops re-sending them (set the route's repeat_interval below it). Zero leaves
	// endsAt unset and Alertmanager's resolve_timeout applies.
	Resend time.Duration `yaml:"resend"`
	// BearerToken, when set, is sent as Authorization: Bearer.
	BearerToken string `yaml:"bearer_token"`
}

// PostableAlert is one alert of the API's request body.
type PostableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt,omitzero"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// Notifier posts to one Alertmanager.
type Notifier struct {
	c   Config
	hc  *http.Client
	now func() time.Time
}

// New returns an Alertmanager notifier; hc and now may be nil.
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
	c.URL = strings.TrimSuffix(c.URL, "/")
	return &Notifier{c: c, hc: hc, now: now}
}

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// Convert maps a message to the API's alerts. Label names Alertmanager would refuse are
// rewritten (invalid characters become '_'), and empty values are dropped, as Alertmanager
// treats an empty label as absent.
func Convert(m *notify.Message, now time.Time, resend time.Duration) []PostableAlert {
	out := make([]PostableAlert, 0, len(m.Alerts))
	for _, a := range m.Alerts {
		p := PostableAlert{Labels: map[string]string{}, Annotations: map[string]string{}, StartsAt: a.StartsAt, GeneratorURL: a.GeneratorURL}
		for k, v := range a.Labels {
			if v == "" {
				continue
			}
			p.Labels[cleanName(k)] = v
		}
		for k, v := range a.Annotations {
			p.Annotations[cleanName(k)] = v
		}
		switch {
		case a.Status == "resolved":
			p.EndsAt = a.EndsAt
			if p.EndsAt.IsZero() {
				p.EndsAt = now
			}
		case resend > 0:
			p.EndsAt = now.Add(resend)
		}
		out = append(out, p)
	}
	return out
}

func cleanName(k string) string {
	if labelName.MatchString(k) {
		return k
	}
	b := []byte(k)
	for i, c := range b {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	return string(b)
}

// Notify posts the message's alerts. Alertmanager deduplicates by labels itself, so a repeated
// post after a crash is harmless.
func (n *Notifier) Notify(ctx context.Context, key string, m *notify.Message) error {
	body, err := json.Marshal(Convert(m, n.now(), n.c.Resend))
	if err != nil {
		return notify.Permanent(err)
	}
	ctx, cancel := context.WithTimeout(ctx, n.c.Timeout)
	defer cancel()
	url := n.c.URL + "/api/v2/alerts"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return notify.Permanent(fmt.Errorf("alertmanager %s: %w", url, err))
	}
	req.Header.Set("Content-Type", "application/json")
	if n.c.BearerToken != "" {
		req.Header.Set("Authorization", "Bearer "+n.c.BearerToken)
	}
	resp, err := n.hc.Do(req)
	if err != nil {
		return fmt.Errorf("alertmanager %s: %w", url, err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return notify.StatusError("alertmanager "+url, resp.StatusCode, rb)
}
