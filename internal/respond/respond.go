// Package respond runs automated responses to alerts: block a client at the gateway, restore
// the last approved model, pause deployments, call an external webhook. Every action is
// idempotent (one per alert and response), rate-limited, optionally a dry run or waiting for a
// person's approval, recorded in the store and audited.
package respond

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/pipewarden/pipewarden/internal/store"
)

// Action types.
const (
	BlockClient      = "block_client"
	RollbackModel    = "rollback_model"
	PauseDeployments = "pause_deployments"
	Webhook          = "webhook"
)

// Blocker blocks a client at the gateway for a while (the gateway implements it).
type Blocker interface {
	BlockClient(ctx context.Context, client string, ttl time.Duration, reason string) error
}

// ModelRestorer restores a model's last approved version and returns it (the model watcher
// implements it).
type ModelRestorer interface {
	RestoreModel(ctx context.Context, model, reason string) (version string, err error)
}

// StateStore keeps the deployment pause flag.
type StateStore interface {
	PutState(ctx context.Context, key string, value []byte) error
	GetState(ctx context.Context, key string) ([]byte, error)
}

// ActionStore keeps actions.
type ActionStore interface {
	CreateAction(ctx context.Context, a store.Action) (store.Action, bool, error)
	SaveAction(ctx context.Context, a store.Action) error
	GetAction(ctx context.Context, id string) (store.Action, error)
}

// AuditRecord is what the audit hook receives for every action and alert change.
type AuditRecord struct {
	Time   time.Time      `json:"time"`
	Actor  string         `json:"actor"`
	Kind   string         `json:"kind"`   // e.g. action.executed, alert.acknowledged, silence.created
	Object string         `json:"object"` // the id of the action, alert or silence
	Detail map[string]any `json:"detail,omitempty"`
}

// AuditFunc records an audit record (the daemon appends it to the audit log).
type AuditFunc func(ctx context.Context, r AuditRecord)

// Config is one configured response.
type Config struct {
	Name string `yaml:"name"`
	Type string `yaml:"type"` // block_client, rollback_model, pause_deployments, webhook
	// Matchers choose the alerts this response runs for (label matchers, e.g. 'rule="x"',
	// 'severity="critical"'); a route's responses list binds it too.
	Matchers []string `yaml:"matchers"`
	// DryRun records what the action would do without doing it.
	DryRun bool `yaml:"dry_run"`
	// RequireApproval leaves the action pending until POST /v1/actions/{id}/approve.
	RequireApproval bool `yaml:"require_approval"`
	// TTL is how long block_client blocks and pause_deployments pauses (default 1h; 0 in
	// the YAML means the default).
	TTL time.Duration `yaml:"ttl"`
	// Target names the alert label holding the action's target (block_client: default
	// "client", else the subject when its kind is client; rollback_model: default "model",
	// else the subject when its kind is model).
	Target string `yaml:"target"`
	// RateLimit bounds executions per Per (defaults 10 per hour).
	RateLimit int           `yaml:"rate_limit"`
	Per       time.Duration `yaml:"per"`
	// URL and Secret configure the webhook type.
	URL    string `yaml:"url"`
	Secret string `yaml:"secret"`
}

// Validate checks one response.
func (c *Config) Validate() error {
	if c.Name == "" {
		return errors.New("response needs a name")
	}
	switch c.Type {
	case BlockClient, RollbackModel, PauseDeployments:
	case Webhook:
		if c.URL == "" {
			return fmt.Errorf("response %s: webhook needs a url", c.Name)
		}
	default:
		return fmt.Errorf("response %s: unknown type %q (want block_client, rollback_model, pause_deployments or webhook)", c.Name, c.Type)
	}
	if c.TTL < 0 || c.RateLimit < 0 || c.Per < 0 {
		return fmt.Errorf("response %s: ttl, rate_limit and per must not be negative", c.Name)
	}
	return nil
}

// Options wire a Runner.
type Options struct {
	Responses []Config
	Store     ActionStore
	State     StateStore    // for pause_deployments; nil refuses it
	Blocker   Blocker       // nil refuses block_client
	Models    ModelRestorer // nil refuses rollback_model
	HTTP      *http.Client
	Audit     AuditFunc
	Now       func() time.Time
	Logger    *slog.Logger
}

// Runner runs responses.
type Runner struct {
	o      Options
	byName map[string]*Config
	mu     sync.Mutex
	window map[string]*window // rate limit per response
}

type window struct {
	start time.Time
	n     int
}

// New returns a runner; the responses must have been validated.
func New(o Options) *Runner {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{}
	}
	r := &Runner{o: o, byName: map[string]*Config{}, window: map[string]*window{}}
	for i := range o.Responses {
		c := &o.Responses[i]
		if c.TTL == 0 {
			c.TTL = time.Hour
		}
		if c.RateLimit == 0 {
			c.RateLimit = 10
		}
		if c.Per == 0 {
			c.Per = time.Hour
		}
		r.byName[c.Name] = c
	}
	return r
}

// Alert is what a response knows about the alert that triggers it.
type Alert struct {
	ID          string
	Fingerprint string
	Rule        string
	Severity    string
	Title       string
	SubjectKind string
	Subject     string
	Labels      map[string]string
	Priority    float64
}

// Trigger runs the named responses for an alert and returns the actions as stored. A response
// already run for this alert returns the stored action unchanged (idempotent).
func (r *Runner) Trigger(ctx context.Context, a Alert, names []string) []store.Action {
	var out []store.Action
	for _, name := range names {
		c, ok := r.byName[name]
		if !ok {
			continue
		}
		out = append(out, r.trigger(ctx, a, c))
	}
	return out
}

func actionKey(response, alertID string) string {
	h := sha256.Sum256([]byte(response + "\x00" + alertID))
	return hex.EncodeToString(h[:16])
}

func (r *Runner) trigger(ctx context.Context, a Alert, c *Config) store.Action {
	now := r.o.Now()
	act := store.Action{ID: store.NewID(), Key: actionKey(c.Name, a.ID), AlertID: a.ID, Response: c.Name, Type: c.Type,
		DryRun: c.DryRun, CreatedAt: now, UpdatedAt: now, Params: map[string]string{"rule": a.Rule, "title": a.Title,
			"severity": a.Severity, "subject_kind": a.SubjectKind, "subject": a.Subject}}
	act.Target = target(c, a)
	switch {
	case needsTarget(c.Type) && act.Target == "":
		act.Status, act.Error = store.ActionFailed, fmt.Sprintf("the alert names no %s to act on", targetLabel(c))
	case c.RequireApproval:
		act.Status = store.ActionPending
	default:
		act.Status = store.ActionQueued
	}
	stored, created, err := r.o.Store.CreateAction(ctx, act)
	if err != nil {
		act.Status, act.Error = store.ActionFailed, err.Error()
		r.o.Logger.Error("store action", "response", c.Name, "alert", a.ID, "err", err)
		return act
	}
	if !created {
		return stored
	}
	r.audit(ctx, "pipewarden", "action.created", act)
	if act.Status != store.ActionQueued {
		return act
	}
	return r.execute(ctx, act, c)
}

// Approve runs a pending action on a person's approval.
func (r *Runner) Approve(ctx context.Context, id, actor string) (store.Action, error) {
	act, err := r.o.Store.GetAction(ctx, id)
	if err != nil {
		return act, err
	}
	if act.Status != store.ActionPending {
		return act, fmt.Errorf("action %s is %s, not pending approval: %w", id, act.Status, ErrNotPending)
	}
	c, ok := r.byName[act.Response]
	if !ok {
		return act, fmt.Errorf("action %s: response %q is no longer configured", id, act.Response)
	}
	act.ApprovedBy = actor
	act.Status = store.ActionQueued
	r.audit(ctx, actor, "action.approved", act)
	return r.execute(ctx, act, c), nil
}

// Resume runs the actions left queued by a crash between storing and finishing them (each
// action's effect is idempotent: a block or pause is set again, a webhook carries the action's
// key). It returns them as finished.
func (r *Runner) Resume(ctx context.Context, st interface {
	ListActions(ctx context.Context, status string) ([]store.Action, error)
}) ([]store.Action, error) {
	queued, err := st.ListActions(ctx, store.ActionQueued)
	if err != nil {
		return nil, fmt.Errorf("resume queued actions: %w", err)
	}
	var out []store.Action
	for _, act := range queued {
		c, ok := r.byName[act.Response]
		if !ok {
			act.Status, act.Error, act.UpdatedAt = store.ActionFailed, fmt.Sprintf("response %q is no longer configured", act.Response), r.o.Now()
			if err := r.o.Store.SaveAction(ctx, act); err != nil {
				return out, err
			}
			out = append(out, act)
			continue
		}
		out = append(out, r.execute(ctx, act, c))
	}
	return out, nil
}

// ErrNotPending is returned when approving an action that is not waiting for approval.
var ErrNotPending = errors.New("action not pending approval")

func (r *Runner) allow(c *Config, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.window[c.Name]
	if w == nil || now.Sub(w.start) >= c.Per {
		w = &window{start: now}
		r.window[c.Name] = w
	}
	if w.n >= c.RateLimit {
		return false
	}
	w.n++
	return true
}

// execute runs a queued action (or records the dry run) and stores the outcome.
func (r *Runner) execute(ctx context.Context, act store.Action, c *Config) store.Action {
	now := r.o.Now()
	act.UpdatedAt = now
	switch {
	case !r.allow(c, now):
		act.Status = store.ActionLimited
		act.Error = fmt.Sprintf("response %s ran %d times in the last %s", c.Name, c.RateLimit, c.Per)
	case c.DryRun:
		act.Status, act.Result = store.ActionDryRun, "would "+describe(act, c)
	default:
		res, err := r.do(ctx, act, c)
		if err != nil {
			act.Status, act.Error = store.ActionFailed, err.Error()
		} else {
			act.Status, act.Result = store.ActionSucceeded, res
		}
	}
	if err := r.o.Store.SaveAction(ctx, act); err != nil {
		r.o.Logger.Error("store action result", "action", act.ID, "err", err)
	}
	actor := "pipewarden"
	if act.ApprovedBy != "" {
		actor = act.ApprovedBy
	}
	r.audit(ctx, actor, "action."+act.Status, act)
	return act
}

func (r *Runner) audit(ctx context.Context, actor, kind string, act store.Action) {
	if r.o.Audit == nil {
		return
	}
	r.o.Audit(ctx, AuditRecord{Time: r.o.Now(), Actor: actor, Kind: kind, Object: act.ID, Detail: map[string]any{
		"alert_id": act.AlertID, "response": act.Response, "type": act.Type, "target": act.Target, "dry_run": act.DryRun,
		"status": act.Status, "result": act.Result, "error": act.Error}})
}

func needsTarget(typ string) bool { return typ == BlockClient || typ == RollbackModel }

func targetLabel(c *Config) string {
	if c.Target != "" {
		return c.Target
	}
	switch c.Type {
	case BlockClient:
		return "client"
	case RollbackModel:
		return "model"
	}
	return ""
}

// target picks the action's target from the alert: the configured label, else the label named
// for the type, else the subject when it is of that kind.
func target(c *Config, a Alert) string {
	l := targetLabel(c)
	if l == "" {
		return ""
	}
	if v := a.Labels[l]; v != "" {
		return v
	}
	if c.Target == "" && a.SubjectKind == l {
		return a.Subject
	}
	return ""
}

func describe(act store.Action, c *Config) string {
	switch c.Type {
	case BlockClient:
		return fmt.Sprintf("block client %q for %s", act.Target, c.TTL)
	case RollbackModel:
		return fmt.Sprintf("restore the last approved version of model %q", act.Target)
	case PauseDeployments:
		return fmt.Sprintf("pause deployments for %s", c.TTL)
	case Webhook:
		return fmt.Sprintf("POST the alert to %s", c.URL)
	}
	return c.Type
}
