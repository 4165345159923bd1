package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/pipewarden/pipewarden/internal/finding"
)

// AlertStore is the durable state of the alerting pipeline: alerts, silences, notification
// groups and their outbox, and automated actions. Every Store implementation provides it and the
// conformance suite covers it.
type AlertStore interface {
	// SaveAlerts inserts or replaces alerts by id in one transaction.
	SaveAlerts(ctx context.Context, as []AlertDetail) error
	GetAlert(ctx context.Context, id string) (AlertDetail, error)
	// OpenAlerts returns every alert that is firing or acknowledged.
	OpenAlerts(ctx context.Context) ([]AlertDetail, error)
	// ClosedCounts returns, per fingerprint, how many alerts with it were resolved or marked
	// false positive (the recurrence of a fingerprint).
	ClosedCounts(ctx context.Context, fingerprints []string) (map[string]int, error)
	// RuleFeedback returns, per rule, how many alerts it raised and how many were marked false
	// positive.
	RuleFeedback(ctx context.Context) ([]RuleFeedback, error)

	// PutSilence creates or replaces a silence by id.
	PutSilence(ctx context.Context, s Silence) error
	// ListSilences returns silences ending after since (zero: all), by creation time.
	ListSilences(ctx context.Context, since time.Time) ([]Silence, error)

	// RecordFlush stores the state of notification groups and enqueues their notifications in
	// one transaction. A notification whose key is already stored is skipped, so a flush
	// repeated after a crash does not notify twice. Groups with Deleted set are removed.
	RecordFlush(ctx context.Context, gs []GroupState, ns []Notification) error
	ListGroups(ctx context.Context) ([]GroupState, error)
	// ClaimNotifications returns up to limit pending notifications due at now and leases them
	// until now+lease: a claim that is never finished (a crash) is claimed again after that.
	ClaimNotifications(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Notification, error)
	// FinishNotification records the outcome of a delivery attempt.
	FinishNotification(ctx context.Context, key string, r DeliveryResult) error
	// NotificationStats counts notifications by state.
	NotificationStats(ctx context.Context) (map[string]int, error)

	// CreateAction stores a new action unless one with the same Key exists; it returns the
	// stored action and whether it was created.
	CreateAction(ctx context.Context, a Action) (Action, bool, error)
	// SaveAction replaces an action by id.
	SaveAction(ctx context.Context, a Action) error
	GetAction(ctx context.Context, id string) (Action, error)
	// ListActions returns actions in a status ("" for all), oldest first, at most 1000.
	ListActions(ctx context.Context, status string) ([]Action, error)
}

// Alert lifecycle states.
const (
	AlertFiring        = "firing"
	AlertAcknowledged  = "acknowledged"
	AlertResolved      = "resolved"
	AlertFalsePositive = "false_positive"
)

// AlertDetail is an alert with its context and history; its JSON is a superset of Alert's.
type AlertDetail struct {
	Alert
	Confidence  float64           `json:"confidence"`
	Recurrence  int               `json:"recurrence"` // earlier alerts with the same fingerprint
	Criticality string            `json:"criticality,omitempty"`
	ATLAS       []string          `json:"atlas,omitempty"`
	OWASP       []string          `json:"owasp,omitempty"`
	Runbook     string            `json:"runbook,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	SilencedBy  []string          `json:"silenced_by,omitempty"`
	InhibitedBy []string          `json:"inhibited_by,omitempty"`
	// Findings holds the first finding and the latest ones (at most 5).
	Findings []finding.Finding `json:"findings"`
	// EventIDs are the events the findings rest on (at most 100, the first ones).
	EventIDs  []string       `json:"event_ids,omitempty"`
	Events    []AlertEvent   `json:"events"`
	Actions   []ActionResult `json:"actions,omitempty"`
	Comment   string         `json:"comment,omitempty"`
	UpdatedAt time.Time      `json:"updated_at"`
	EndedAt   time.Time      `json:"ended_at,omitzero"`
}

// Open reports whether the alert is firing or acknowledged.
func (a *AlertDetail) Open() bool {
	return a.State == AlertFiring || a.State == AlertAcknowledged
}

// AlertEvent is one change in an alert's history.
type AlertEvent struct {
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`
	Action  string    `json:"action"` // created, acknowledged, resolved, false_positive, silenced, inhibited, action
	Comment string    `json:"comment,omitempty"`
}

// ActionResult is an automated action as recorded on its alert.
type ActionResult struct {
	ID     string `json:"id"`
	Type   string `json:"type"`
	Status string `json:"status"`
	Result string `json:"result,omitempty"`
}

// RuleFeedback is the false-positive feedback of one rule.
type RuleFeedback struct {
	Rule           string `json:"rule"`
	Alerts         int    `json:"alerts"`
	FalsePositives int    `json:"false_positives"`
}

// Matcher matches one label: Name, an operator (=, !=, =~, !~) and Value.
type Matcher struct {
	Name    string `json:"name" yaml:"name"`
	Value   string `json:"value" yaml:"value"`
	IsRegex bool   `json:"isRegex" yaml:"is_regex"`
	IsEqual bool   `json:"isEqual" yaml:"is_equal"`
}

// Silence mutes alerts whose labels match every matcher between StartsAt and EndsAt.
type Silence struct {
	ID        string    `json:"id"`
	Matchers  []Matcher `json:"matchers"`
	StartsAt  time.Time `json:"starts_at"`
	EndsAt    time.Time `json:"ends_at"`
	CreatedBy string    `json:"created_by"`
	Comment   string    `json:"comment"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// GroupState is the persisted state of one notification group.
type GroupState struct {
	Key       string            `json:"key"`
	Route     string            `json:"route"`
	Labels    map[string]string `json:"labels"`
	Seq       int64             `json:"seq"`        // notifications sent so far
	NextFlush time.Time         `json:"next_flush"` // when the group is looked at next
	// LastNotify and Notified describe the last notification: when, and the fingerprints of
	// the firing alerts it named.
	LastNotify time.Time `json:"last_notify,omitzero"`
	Notified   []string  `json:"notified,omitempty"`
	Deleted    bool      `json:"-"`
}

// Notification states.
const (
	NotificationPending   = "pending"
	NotificationDelivered = "delivered"
	NotificationFailed    = "failed"
)

// Notification is one message to one receiver in the outbox. Key is its idempotency key.
type Notification struct {
	Key       string          `json:"key"`
	Receiver  string          `json:"receiver"`
	GroupKey  string          `json:"group_key"`
	Payload   json.RawMessage `json:"payload"`
	State     string          `json:"state"`
	Attempts  int             `json:"attempts"`
	NextAt    time.Time       `json:"next_at"`
	CreatedAt time.Time       `json:"created_at"`
	LastError string          `json:"last_error,omitempty"`
}

// DeliveryResult is the outcome of one delivery attempt: delivered, retry at RetryAt, or
// (neither) failed for good.
type DeliveryResult struct {
	Delivered bool
	RetryAt   time.Time
	Error     string
	At        time.Time
}

// Action statuses.
const (
	ActionPending   = "pending_approval"
	ActionQueued    = "queued"
	ActionDryRun    = "dry_run"
	ActionSucceeded = "succeeded"
	ActionFailed    = "failed"
	ActionLimited   = "rate_limited"
)

// Action is one automated response to an alert.
type Action struct {
	ID         string            `json:"id"`
	Key        string            `json:"key"` // idempotency: one action per key
	AlertID    string            `json:"alert_id"`
	Response   string            `json:"response"` // the configured response's name
	Type       string            `json:"type"`     // block_client, rollback_model, pause_deployments, webhook
	Target     string            `json:"target,omitempty"`
	Params     map[string]string `json:"params,omitempty"`
	Status     string            `json:"status"`
	DryRun     bool              `json:"dry_run"`
	Result     string            `json:"result,omitempty"`
	Error      string            `json:"error,omitempty"`
	ApprovedBy string            `json:"approved_by,omitempty"`
	CreatedAt  time.Time         `json:"created_at"`
	UpdatedAt  time.Time         `json:"updated_at"`
}
