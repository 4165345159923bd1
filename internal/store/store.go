// Package store declares what the daemon keeps durably (events, findings, alerts, assets, tokens)
// and the conformance suite every implementation passes; implementations live in store/sqlite and
// store/postgres.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/finding"
)

// ErrNotFound is returned when a looked-up record does not exist.
var ErrNotFound = errors.New("not found")

// Store is the daemon's durable state. Implementations are safe for concurrent use.
type Store interface {
	// AppendEvents stores events in one transaction, skipping ids already stored, and records
	// the assets they name. It returns how many were new.
	AppendEvents(ctx context.Context, evs []event.Event) (inserted int, err error)
	ListEvents(ctx context.Context, q EventQuery) (Page[StoredEvent], error)
	DeleteEventsBefore(ctx context.Context, t time.Time) (int64, error)

	AddFindings(ctx context.Context, fs []finding.Finding) error
	ListFindings(ctx context.Context, q FindingQuery) (Page[finding.Finding], error)

	ListAlerts(ctx context.Context, q AlertQuery) (Page[Alert], error)
	// AlertStore holds the alerting pipeline's state (alerts, silences, outbox, actions);
	// declared in alerts.go.
	AlertStore
	ListAssets(ctx context.Context, q AssetQuery) (Page[Asset], error)

	CreateToken(ctx context.Context, t Token) error
	LookupToken(ctx context.Context, hash string) (Token, error)
	CountTokens(ctx context.Context) (int, error)
	// ListTokens returns every token, oldest first (hashes included: they are not secrets).
	ListTokens(ctx context.Context) ([]Token, error)

	// PutState and GetState keep small named blobs (cursors and the like); large ones (rule
	// engine snapshots) go through PutLargeState and GetLargeState, in parts.
	PutState(ctx context.Context, key string, value []byte) error
	GetState(ctx context.Context, key string) ([]byte, error)

	Close() error
}

// StoredEvent is an event as stored: its raw JSON and when it was received.
type StoredEvent struct {
	Seq        int64           `json:"-"`
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Subject    string          `json:"subject,omitempty"`
	Time       time.Time       `json:"time"`
	ReceivedAt time.Time       `json:"received_at"`
	Event      json.RawMessage `json:"event"`
}

// Page is one page of a listing; Next is empty on the last page.
type Page[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`
}

// EventQuery filters events; zero fields do not filter. Results are in arrival order.
type EventQuery struct {
	Type    string
	Subject string
	Since   time.Time // event time >= Since
	Until   time.Time // event time < Until
	Limit   int       // default 100, max 1000
	Cursor  string
}

// FindingQuery filters findings, newest first.
type FindingQuery struct {
	Rule        string
	MinSeverity finding.Severity
	SubjectName string
	Since       time.Time
	Limit       int
	Cursor      string
}

// AlertQuery filters alerts.
type AlertQuery struct {
	State  string
	Limit  int
	Cursor string
}

// AssetQuery filters assets.
type AssetQuery struct {
	Kind   string
	Limit  int
	Cursor string
}

// Alert is a deduplicated group of findings with a lifecycle (filled by the alerting pipeline).
type Alert struct {
	ID          string            `json:"id"`
	Fingerprint string            `json:"fingerprint"`
	Rule        string            `json:"rule"`
	Severity    finding.Severity  `json:"severity"`
	Title       string            `json:"title"`
	Subject     finding.Subject   `json:"subject"`
	Labels      map[string]string `json:"labels,omitempty"`
	State       string            `json:"state"`
	Count       int               `json:"count"`
	Priority    float64           `json:"priority"`
	FirstSeen   time.Time         `json:"first_seen"`
	LastSeen    time.Time         `json:"last_seen"`
}

// Asset is something the pipeline's events name: a dataset, model, endpoint, client, principal.
type Asset struct {
	Kind        string    `json:"kind"`
	Name        string    `json:"name"`
	FirstSeen   time.Time `json:"first_seen"`
	LastSeen    time.Time `json:"last_seen"`
	Events      int64     `json:"events"`
	LastEventID string    `json:"last_event_id"`
}

// Roles, from least to most privileged for reading; ingest may only write events.
const (
	RoleIngest    = "ingest"
	RoleViewer    = "viewer"
	RoleResponder = "responder"
	RoleAdmin     = "admin"
)

// ValidRole reports whether r is one of the four roles.
func ValidRole(r string) bool {
	switch r {
	case RoleIngest, RoleViewer, RoleResponder, RoleAdmin:
		return true
	}
	return false
}

// Token is an API token; only the SHA-256 of the secret is ever stored.
type Token struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	Hash      string    `json:"-"` // hex SHA-256 of the secret
	CreatedAt time.Time `json:"created_at"`
}

// Limit clamps a requested page size.
func Limit(n int) int {
	switch {
	case n <= 0:
		return 100
	case n > 1000:
		return 1000
	}
	return n
}
