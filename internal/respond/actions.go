package respond

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pipewarden/pipewarden/internal/notify/webhook"
	"github.com/pipewarden/pipewarden/internal/store"
)

// deploymentsKey is the state key of the deployment pause flag.
const deploymentsKey = "respond/deployments"

// DeploymentStatus is what GET /v1/deployments/status and the check gate report.
type DeploymentStatus struct {
	Paused   bool      `json:"paused"`
	Reason   string    `json:"reason,omitempty"`
	AlertID  string    `json:"alert_id,omitempty"`
	ActionID string    `json:"action_id,omitempty"`
	Since    time.Time `json:"since,omitzero"`
	Until    time.Time `json:"until,omitzero"`
}

// Deployments reads the pause flag; a pause whose Until has passed reads as not paused.
func Deployments(ctx context.Context, st StateStore, now time.Time) (DeploymentStatus, error) {
	var d DeploymentStatus
	b, err := st.GetState(ctx, deploymentsKey)
	if errors.Is(err, store.ErrNotFound) {
		return d, nil
	}
	if err != nil {
		return d, fmt.Errorf("read deployment status: %w", err)
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return d, fmt.Errorf("decode deployment status: %w", err)
	}
	if d.Paused && !d.Until.IsZero() && !now.Before(d.Until) {
		return DeploymentStatus{}, nil
	}
	return d, nil
}

// Deployments reads the pause flag through the runner's state store.
func (r *Runner) Deployments(ctx context.Context) (DeploymentStatus, error) {
	if r.o.State == nil {
		return DeploymentStatus{}, nil
	}
	return Deployments(ctx, r.o.State, r.o.Now())
}

// ResumeDeployments clears the pause flag.
func (r *Runner) ResumeDeployments(ctx context.Context, actor string) error {
	if r.o.State == nil {
		return errors.New("deployment pausing is not configured")
	}
	b, _ := json.Marshal(DeploymentStatus{})
	if err := r.o.State.PutState(ctx, deploymentsKey, b); err != nil {
		return fmt.Errorf("resume deployments: %w", err)
	}
	if r.o.Audit != nil {
		r.o.Audit(ctx, AuditRecord{Time: r.o.Now(), Actor: actor, Kind: "deployments.resumed", Object: "deployments"})
	}
	return nil
}

// do performs an action for real.
func (r *Runner) do(ctx context.Context, act store.Action, c *Config) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	reason := fmt.Sprintf("pipewarden alert %s (%s)", act.AlertID, act.Params["rule"])
	switch c.Type {
	case BlockClient:
		if r.o.Blocker == nil {
			return "", errors.New("no gateway is connected to block clients")
		}
		if err := r.o.Blocker.BlockClient(ctx, act.Target, c.TTL, reason); err != nil {
			return "", fmt.Errorf("block client %q: %w", act.Target, err)
		}
		return fmt.Sprintf("blocked client %q for %s", act.Target, c.TTL), nil
	case RollbackModel:
		if r.o.Models == nil {
			return "", errors.New("no model watcher is connected to restore models")
		}
		v, err := r.o.Models.RestoreModel(ctx, act.Target, reason)
		if err != nil {
			return "", fmt.Errorf("restore model %q: %w", act.Target, err)
		}
		return fmt.Sprintf("restored model %q to version %s", act.Target, v), nil
	case PauseDeployments:
		if r.o.State == nil {
			return "", errors.New("no state store to pause deployments")
		}
		now := r.o.Now()
		d := DeploymentStatus{Paused: true, Reason: reason, AlertID: act.AlertID, ActionID: act.ID, Since: now, Until: now.Add(c.TTL)}
		b, _ := json.Marshal(d)
		if err := r.o.State.PutState(ctx, deploymentsKey, b); err != nil {
			return "", fmt.Errorf("pause deployments: %w", err)
		}
		return fmt.Sprintf("paused deployments until %s", d.Until.UTC().Format(time.RFC3339)), nil
	case Webhook:
		body, err := json.Marshal(map[string]any{"action_id": act.ID, "alert_id": act.AlertID, "response": act.Response, "params": act.Params})
		if err != nil {
			return "", err
		}
		if err := webhook.Post(ctx, r.o.HTTP, c.URL, c.Secret, act.Key, body, 10*time.Second, r.o.Now); err != nil {
			return "", err
		}
		return "posted to " + c.URL, nil
	}
	return "", fmt.Errorf("unknown response type %q", c.Type)
}
