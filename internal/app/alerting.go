package app

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pipewarden/pipewarden/internal/alert"
	"github.com/pipewarden/pipewarden/internal/audit"
	"github.com/pipewarden/pipewarden/internal/httpapi"
	"github.com/pipewarden/pipewarden/internal/respond"
)

// setupAlerting builds the alerting pipeline on the findings bus and mounts its API.
func (a *App) setupAlerting(ctx context.Context) ([]httpapi.Mount, error) {
	p, err := alert.New(ctx, alert.Options{
		Config: a.cfg.Alerting, Store: a.store, Now: a.now, Logger: a.log, Registerer: a.reg,
		Audit:   a.auditAlerting,
		Blocker: gatewayBlocker{a},
		Models:  modelRestorer{a},
	})
	if err != nil {
		return nil, fmt.Errorf("alerting: %w", err)
	}
	a.alerts = p
	a.findings.Subscribe("alerts", p.Handle)
	var mounts []httpapi.Mount
	for _, r := range p.Handlers(principalName) {
		roles := httpapi.ReadRoles
		if r.Role == "responder" {
			roles = httpapi.RespondRoles
		} else if r.Role == "admin" {
			roles = httpapi.AdminRoles
		}
		mounts = append(mounts, httpapi.Mount{Pattern: r.Pattern, Roles: roles, Handler: r.Handler})
	}
	return mounts, nil
}

func principalName(r *http.Request) string {
	if p, ok := httpapi.PrincipalFrom(r.Context()); ok {
		return p.Name
	}
	return "anonymous"
}

// auditAlerting maps the alerting hook's records ("action.executed", "alert.acknowledged", ...)
// onto audit records.
func (a *App) auditAlerting(ctx context.Context, r respond.AuditRecord) {
	kind, action, ok := strings.Cut(r.Kind, ".")
	if !ok {
		kind, action = "alert", r.Kind
	}
	a.auditRecords(ctx, audit.Record{Kind: audit.Kind(kind), Actor: r.Actor, Action: action, Subject: r.Object, Time: r.Time, Data: r.Detail})
}

// gatewayBlocker is the block_client response: the embedded gateway's block list.
type gatewayBlocker struct{ a *App }

func (g gatewayBlocker) BlockClient(ctx context.Context, client string, ttl time.Duration, reason string) error {
	return g.a.blockClient(ctx, client, ttl, reason)
}

// modelRestorer is the rollback_model response: the model watcher's rollback.
type modelRestorer struct{ a *App }

func (m modelRestorer) RestoreModel(ctx context.Context, model, reason string) (string, error) {
	res, err := m.a.Rollback(ctx, model)
	if err != nil {
		return "", err
	}
	return strconv.Itoa(res.Version), nil
}

// blockClient blocks a client at the embedded gateway.
func (a *App) blockClient(ctx context.Context, client string, ttl time.Duration, reason string) error {
	if a.gw == nil {
		return fmt.Errorf("block_client: no gateway runs in this daemon (configure gateway: in serve's config, or block at a standalone gateway through its admin API)")
	}
	return a.gwBlock(ctx, client, ttl, reason)
}
