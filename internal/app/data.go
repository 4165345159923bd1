package app

import (
	"context"
	"fmt"
	"strings"

	"github.com/pipewarden/pipewarden/internal/dataset/monitor"
	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/httpapi"
)

// setupData checks data batches against their baselines and runs the streaming detectors on
// inference features, as a consumer of the event bus.
func (a *App) setupData() ([]httpapi.Mount, error) {
	m, err := monitor.New(monitor.Options{Config: a.cfg.Data, DataDir: a.cfg.DataDir, Logger: a.log, Now: a.now})
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	a.data = m
	a.events.Subscribe("data", func(ctx context.Context, evs []event.Event) {
		if fs := m.HandleEvents(ctx, evs); len(fs) > 0 {
			a.publishFindingsWait(ctx, fs)
		}
	})
	var mounts []httpapi.Mount
	for _, p := range monitor.Routes() {
		roles := httpapi.ReadRoles
		if strings.HasPrefix(p, "POST ") {
			roles = httpapi.IngestRoles
		}
		mounts = append(mounts, httpapi.Mount{Pattern: p, Roles: roles, Handler: m.Handler()})
	}
	return mounts, nil
}
