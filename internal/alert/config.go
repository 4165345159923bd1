package alert

import (
	"errors"
	"fmt"
	"path"
	"time"

	"github.com/pipewarden/pipewarden/internal/notify/alertmanager"
	"github.com/pipewarden/pipewarden/internal/notify/file"
	"github.com/pipewarden/pipewarden/internal/notify/slack"
	"github.com/pipewarden/pipewarden/internal/notify/webhook"
	"github.com/pipewarden/pipewarden/internal/respond"
)

// Alertmanager's grouping defaults.
const (
	DefaultGroupWait      = 30 * time.Second
	DefaultGroupInterval  = 5 * time.Minute
	DefaultRepeatInterval = 4 * time.Hour
)

// Config is the alerting section of the configuration (alerting: in the main file).
type Config struct {
	// ExternalURL is the dashboard's base URL; notifications link to ExternalURL/alerts/{id}.
	ExternalURL  string            `yaml:"external_url"`
	Route        Route             `yaml:"route"`
	Receivers    []Receiver        `yaml:"receivers"`
	InhibitRules []InhibitRule     `yaml:"inhibit_rules"`
	Silences     SilenceConfig     `yaml:"silences"`
	Criticality  []Criticality     `yaml:"criticality"`
	Responses    []respond.Config  `yaml:"responses"`
	AutoResolve  AutoResolve       `yaml:"auto_resolve"`
	RateLimit    RateLimit         `yaml:"rate_limit"`
	Delivery     Delivery          `yaml:"delivery"`
	Runbooks     map[string]string `yaml:"runbooks"` // rule id -> runbook text
}

// Route is a node of the routing tree, with Alertmanager's meanings: an alert walks the tree
// depth-first, a matching child takes it unless Continue is set, and a node without a matching
// child takes it itself. Unset fields are inherited from the parent.
type Route struct {
	Receiver       string        `yaml:"receiver"`
	Matchers       []string      `yaml:"matchers"`
	GroupBy        []string      `yaml:"group_by"` // "..." groups by every label
	GroupWait      time.Duration `yaml:"group_wait"`
	GroupInterval  time.Duration `yaml:"group_interval"`
	RepeatInterval time.Duration `yaml:"repeat_interval"`
	Continue       bool          `yaml:"continue"`
	// Responses names responses to run for alerts this route takes.
	Responses []string `yaml:"responses"`
	Routes    []Route  `yaml:"routes"`
}

// Receiver is a named destination; exactly one kind is set.
type Receiver struct {
	Name         string               `yaml:"name"`
	Webhook      *webhook.Config      `yaml:"webhook"`
	Slack        *slack.Config        `yaml:"slack"`
	Alertmanager *alertmanager.Config `yaml:"alertmanager"`
	File         *file.Config         `yaml:"file"`
	// SendResolved sends a notification when alerts resolve (default true).
	SendResolved *bool `yaml:"send_resolved"`
}

// InhibitRule mutes alerts matching Target while an open alert matching Source has the same
// values for the Equal labels.
type InhibitRule struct {
	Source []string `yaml:"source_matchers"`
	Target []string `yaml:"target_matchers"`
	Equal  []string `yaml:"equal"`
}

// SilenceConfig bounds silences made through the API.
type SilenceConfig struct {
	DefaultDuration time.Duration `yaml:"default_duration"`
	MaxDuration     time.Duration `yaml:"max_duration"`
}

// Criticality marks assets: subjects of a kind whose name matches Name (a glob) get Level.
type Criticality struct {
	Kind  string `yaml:"kind"` // dataset, model, endpoint, ... ("" any)
	Name  string `yaml:"name"` // path.Match glob
	Level string `yaml:"level"`
}

// Criticality levels, and their weights in the priority score.
var criticalityWeight = map[string]float64{"critical": 2, "high": 1.5, "normal": 1, "low": 0.5}

// AutoResolve resolves an open alert after a quiet period without findings.
type AutoResolve struct {
	After time.Duration            `yaml:"after"` // default 24h; a negative value disables
	Rules map[string]time.Duration `yaml:"rules"` // per rule id
}

// RateLimit bounds new alerts per rule: findings that would open more are counted
// (rate_limited) and not alerted.
type RateLimit struct {
	NewAlertsPerRule int           `yaml:"new_alerts_per_rule"` // default 1000; negative disables
	Per              time.Duration `yaml:"per"`                 // default 1m
}

// Delivery tunes the notification outbox.
type Delivery struct {
	MaxAttempts int           `yaml:"max_attempts"`
	MinBackoff  time.Duration `yaml:"min_backoff"`
	MaxBackoff  time.Duration `yaml:"max_backoff"`
}

// DefaultConfig is the built-in alerting configuration: no receivers (alerts are kept and served
// by the API), grouping by rule and subject with Alertmanager's intervals, and the inhibition of
// lower-severity alerts by a critical one on the same subject.
func DefaultConfig() Config {
	return Config{
		Route: Route{GroupBy: []string{"rule", "subject"}, GroupWait: DefaultGroupWait, GroupInterval: DefaultGroupInterval, RepeatInterval: DefaultRepeatInterval},
		InhibitRules: []InhibitRule{{
			Source: []string{`severity="critical"`},
			Target: []string{`severity=~"high|medium|low|info"`},
			Equal:  []string{"subject_kind", "subject"},
		}},
		Silences:    SilenceConfig{DefaultDuration: 2 * time.Hour, MaxDuration: 90 * 24 * time.Hour},
		AutoResolve: AutoResolve{After: 24 * time.Hour},
		RateLimit:   RateLimit{NewAlertsPerRule: 1000, Per: time.Minute},
	}
}

// Validate checks the configuration; it reports the first problem found.
func (c *Config) Validate() error {
	names := map[string]bool{}
	for _, r := range c.Receivers {
		if r.Name == "" {
			return errors.New("alerting: every receiver needs a name")
		}
		if names[r.Name] {
			return fmt.Errorf("alerting: receiver %q defined twice", r.Name)
		}
		names[r.Name] = true
		n := 0
		for _, set := range []bool{r.Webhook != nil, r.Slack != nil, r.Alertmanager != nil, r.File != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("alerting: receiver %q must set exactly one of webhook, slack, alertmanager, file", r.Name)
		}
		switch {
		case r.Webhook != nil && r.Webhook.URL == "", r.Slack != nil && r.Slack.URL == "", r.Alertmanager != nil && r.Alertmanager.URL == "":
			return fmt.Errorf("alerting: receiver %q needs a url", r.Name)
		case r.File != nil && r.File.Path == "":
			return fmt.Errorf("alerting: receiver %q needs a path", r.Name)
		}
	}
	resp := map[string]bool{}
	for i := range c.Responses {
		if err := c.Responses[i].Validate(); err != nil {
			return fmt.Errorf("alerting: %w", err)
		}
		if resp[c.Responses[i].Name] {
			return fmt.Errorf("alerting: response %q defined twice", c.Responses[i].Name)
		}
		resp[c.Responses[i].Name] = true
		if _, err := ParseMatchers(c.Responses[i].Matchers); err != nil {
			return fmt.Errorf("alerting: response %s: %w", c.Responses[i].Name, err)
		}
	}
	if err := validateRoute(&c.Route, "route", names, resp, true); err != nil {
		return err
	}
	for i, ir := range c.InhibitRules {
		for _, ms := range [][]string{ir.Source, ir.Target} {
			if _, err := ParseMatchers(ms); err != nil {
				return fmt.Errorf("alerting: inhibit_rules[%d]: %w", i, err)
			}
		}
		if len(ir.Source) == 0 || len(ir.Target) == 0 {
			return fmt.Errorf("alerting: inhibit_rules[%d] needs source_matchers and target_matchers", i)
		}
	}
	for i, cr := range c.Criticality {
		if _, ok := criticalityWeight[cr.Level]; !ok {
			return fmt.Errorf("alerting: criticality[%d]: level %q must be critical, high, normal or low", i, cr.Level)
		}
		if _, err := path.Match(cr.Name, ""); err != nil {
			return fmt.Errorf("alerting: criticality[%d]: bad name pattern %q", i, cr.Name)
		}
	}
	if c.Silences.MaxDuration < 0 || c.Silences.DefaultDuration < 0 {
		return errors.New("alerting: silence durations must not be negative")
	}
	return nil
}

func validateRoute(r *Route, where string, receivers, responses map[string]bool, root bool) error {
	if root && r.Receiver == "" && len(receivers) > 0 {
		return fmt.Errorf("alerting: %s needs a receiver", where)
	}
	if r.Receiver != "" && !receivers[r.Receiver] {
		return fmt.Errorf("alerting: %s: receiver %q is not defined", where, r.Receiver)
	}
	if root && len(r.Matchers) > 0 {
		return fmt.Errorf("alerting: %s: the root route matches everything and takes no matchers", where)
	}
	if _, err := ParseMatchers(r.Matchers); err != nil {
		return fmt.Errorf("alerting: %s: %w", where, err)
	}
	if r.GroupWait < 0 || r.GroupInterval < 0 || r.RepeatInterval < 0 {
		return fmt.Errorf("alerting: %s: intervals must not be negative", where)
	}
	for _, n := range r.Responses {
		if !responses[n] {
			return fmt.Errorf("alerting: %s: response %q is not defined", where, n)
		}
	}
	for i := range r.Routes {
		if err := validateRoute(&r.Routes[i], fmt.Sprintf("%s.routes[%d]", where, i), receivers, responses, false); err != nil {
			return err
		}
	}
	return nil
}
