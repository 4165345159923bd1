package gate

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client talks to a pipewarden daemon: the deployments status and event ingestion.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// NewClient returns a client of the daemon at baseURL (http or https), authenticating with
// token when it is not empty. httpClient nil means a client with a 30 s timeout.
func NewClient(baseURL, token string, httpClient *http.Client) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want http(s)://host[:port]", baseURL)
	}
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 30 * time.Second}
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return &Client{base: u, token: token, http: httpClient}, nil
}

// URL is the server's base URL.
func (c *Client) URL() string { return c.base.String() }

// DeploymentStatus is what the daemon says about deployments.
type DeploymentStatus struct {
	Paused bool           `json:"paused"`
	Reason string         `json:"reason,omitempty"`
	Raw    map[string]any `json:"-"` // the whole answer, for reports
	// Known is false when the daemon has no status route (404): deployments are taken as not
	// paused, and the caller says so.
	Known bool `json:"-"`
}

const maxResponseBytes = 1 << 20

// DeploymentStatus asks GET /v1/deployments/status. A 404 means the daemon does not offer the
// route (Known false, not paused); any other failure is an error, since the gate must not pass
// on a question it could not ask.
func (c *Client) DeploymentStatus(ctx context.Context) (DeploymentStatus, error) {
	var st DeploymentStatus
	body, code, err := c.do(ctx, http.MethodGet, "/v1/deployments/status", "", nil)
	if err != nil {
		return st, err
	}
	switch {
	case code == http.StatusNotFound:
		return st, nil
	case code != http.StatusOK:
		return st, fmt.Errorf("GET %s/v1/deployments/status: %s", c.base, statusText(code, body))
	}
	if err := json.Unmarshal(body, &st.Raw); err != nil {
		return st, fmt.Errorf("GET %s/v1/deployments/status: answer is not a JSON object: %w", c.base, err)
	}
	paused, ok := st.Raw["paused"].(bool)
	if !ok {
		return st, fmt.Errorf("GET %s/v1/deployments/status: answer has no boolean \"paused\"", c.base)
	}
	st.Paused, st.Known = paused, true
	st.Reason, _ = st.Raw["reason"].(string)
	return st, nil
}

// Event is one CloudEvent to send.
type Event struct {
	SpecVersion string         `json:"specversion"`
	ID          string         `json:"id"`
	Source      string         `json:"source"`
	Type        string         `json:"type"`
	Time        string         `json:"time"`
	Subject     string         `json:"subject,omitempty"`
	Data        map[string]any `json:"data"`
}

// Event types the CLI sends (the v1 vocabulary).
const (
	TypeDeployChange = "pipewarden.deploy.change"
	TypeDepsChange   = "pipewarden.deps.change"
)

// NewEvent builds a CloudEvent with a random id.
func NewEvent(typ, source, subject string, now time.Time, data map[string]any) (Event, error) {
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return Event{}, fmt.Errorf("event id: %w", err)
	}
	return Event{SpecVersion: "1.0", ID: hex.EncodeToString(id[:]), Source: source, Type: typ,
		Time: now.UTC().Format(time.RFC3339Nano), Subject: subject, Data: data}, nil
}

// DeployChange is the pipewarden.deploy.change event reporting the gate's verdict: approved is
// true only when the gate passed.
func DeployChange(endpoint, modelDigest, actor string, approved bool, now time.Time, extra map[string]any) (Event, error) {
	data := map[string]any{}
	for k, v := range extra {
		data[k] = v
	}
	data["endpoint"], data["model_digest"], data["actor"], data["approved"] = endpoint, modelDigest, actor, approved
	return NewEvent(TypeDeployChange, "/pipewarden/check", endpoint, now, data)
}

// PostEvent sends one event to POST /v1/events and expects it accepted (2xx).
func (c *Client) PostEvent(ctx context.Context, ev Event) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", ev.Type, err)
	}
	body, code, err := c.do(ctx, http.MethodPost, "/v1/events", "application/cloudevents+json", b)
	if err != nil {
		return err
	}
	if code/100 != 2 {
		return fmt.Errorf("POST %s/v1/events: %s", c.base, statusText(code, body))
	}
	return nil
}

func (c *Client) do(ctx context.Context, method, path, contentType string, body []byte) ([]byte, int, error) {
	u := *c.base
	u.Path += path
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, 0, fmt.Errorf("%s %s: %w", method, u.String(), err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, 0, fmt.Errorf("%s %s: %w", method, u.String(), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, 0, fmt.Errorf("%s %s: read answer: %w", method, u.String(), err)
	}
	return b, resp.StatusCode, nil
}

// statusText is the status and the daemon's {"error": ...} message when it sent one.
func statusText(code int, body []byte) string {
	s := fmt.Sprintf("%d %s", code, http.StatusText(code))
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		s += ": " + e.Error
	}
	switch code {
	case http.StatusUnauthorized:
		s += " (give a token with --token or PIPEWARDEN_TOKEN)"
	case http.StatusForbidden:
		s += " (the token's role does not allow this: reading status needs viewer, sending events ingest)"
	}
	return s
}
