// Package slack posts notifications to a Slack incoming webhook as Block Kit messages: the
// severity, the subject, and a link to each alert in the dashboard.
package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/pipewarden/pipewarden/internal/notify"
)

// Config configures a Slack receiver.
type Config struct {
	// URL is the incoming webhook URL (a secret: use ${VAR} in the config).
	URL     string        `yaml:"url"`
	Timeout time.Duration `yaml:"timeout"`
	// MaxAlerts bounds the alerts listed in one message (default 10; Slack allows 50 blocks).
	MaxAlerts int `yaml:"max_alerts"`
}

// Notifier posts to one incoming webhook.
type Notifier struct {
	c  Config
	hc *http.Client
}

// New returns a Slack notifier; hc may be nil.
func New(c Config, hc *http.Client) *Notifier {
	if hc == nil {
		hc = &http.Client{}
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.MaxAlerts <= 0 || c.MaxAlerts > 20 {
		c.MaxAlerts = 10
	}
	return &Notifier{c: c, hc: hc}
}

// Payload is an incoming-webhook message.
type Payload struct {
	Text   string  `json:"text"`
	Blocks []Block `json:"blocks"`
}

// Block is a Block Kit block (the subset used here).
type Block struct {
	Type      string  `json:"type"`
	Text      *Text   `json:"text,omitempty"`
	Fields    []Text  `json:"fields,omitempty"`
	Elements  []Text  `json:"elements,omitempty"`
	Accessory *Button `json:"accessory,omitempty"`
}

// Text is a plain_text or mrkdwn text object.
type Text struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// Button links to the alert.
type Button struct {
	Type string `json:"type"`
	Text Text   `json:"text"`
	URL  string `json:"url"`
}

// Render builds the Slack message for m.
func Render(m *notify.Message, maxAlerts int) Payload {
	firing := 0
	for _, a := range m.Alerts {
		if a.Status == "firing" {
			firing++
		}
	}
	head := fmt.Sprintf("[%s] %d alert(s)", strings.ToUpper(m.Status), len(m.Alerts))
	if firing > 0 && firing < len(m.Alerts) {
		head = fmt.Sprintf("[FIRING:%d RESOLVED:%d]", firing, len(m.Alerts)-firing)
	}
	if r := m.CommonLabels["rule"]; r != "" {
		head += " " + r
	}
	p := Payload{Text: head, Blocks: []Block{{Type: "header", Text: &Text{Type: "plain_text", Text: trunc(head, 150)}}}}
	for i, a := range m.Alerts {
		if i == maxAlerts {
			p.Blocks = append(p.Blocks, Block{Type: "context", Elements: []Text{{Type: "mrkdwn", Text: fmt.Sprintf("and %d more", len(m.Alerts)-maxAlerts)}}})
			break
		}
		b := Block{Type: "section",
			Text: &Text{Type: "mrkdwn", Text: trunc(fmt.Sprintf("*%s* %s", escape(a.Labels["severity"]), escape(a.Annotations[notify.AnnotationSummary])), 3000)},
			Fields: []Text{
				{Type: "mrkdwn", Text: "*Severity*\n" + escape(a.Labels["severity"])},
				{Type: "mrkdwn", Text: "*Subject*\n" + escape(a.Labels["subject_kind"]+" "+a.Labels["subject"])},
				{Type: "mrkdwn", Text: "*Rule*\n" + escape(a.Labels["rule"])},
				{Type: "mrkdwn", Text: "*Status*\n" + escape(a.Status) + " (count " + escape(a.Annotations[notify.AnnotationCount]) + ")"},
			}}
		if a.GeneratorURL != "" {
			b.Accessory = &Button{Type: "button", Text: Text{Type: "plain_text", Text: "Open"}, URL: a.GeneratorURL}
		}
		p.Blocks = append(p.Blocks, b)
		if rb := a.Annotations[notify.AnnotationRunbook]; rb != "" {
			p.Blocks = append(p.Blocks, Block{Type: "context", Elements: []Text{{Type: "mrkdwn", Text: trunc("Runbook: "+escape(rb), 2000)}}})
		}
	}
	return p
}

// escape neutralises Slack's control characters so alert text cannot form links or mentions.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func trunc(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// Notify posts the rendered message.
func (n *Notifier) Notify(ctx context.Context, key string, m *notify.Message) error {
	body, err := json.Marshal(Render(m, n.c.MaxAlerts))
	if err != nil {
		return notify.Permanent(err)
	}
	ctx, cancel := context.WithTimeout(ctx, n.c.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.c.URL, bytes.NewReader(body))
	if err != nil {
		return notify.Permanent(fmt.Errorf("slack webhook: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.hc.Do(req)
	if err != nil {
		return fmt.Errorf("slack webhook: %w", err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return notify.StatusError("slack webhook", resp.StatusCode, rb)
}
