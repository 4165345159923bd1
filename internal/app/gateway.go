package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/gateway"
	"github.com/pipewarden/pipewarden/internal/httpapi"
)

var gatewayRoutes = []string{"GET /v1/gateway/blocks", "POST /v1/gateway/blocks", "DELETE /v1/gateway/blocks", "GET /v1/gateway/clients"}

// setupGateway builds the embedded gateway when the config has a gateway section. Its admin API
// is always mounted; without a gateway it answers 404 saying so.
func (a *App) setupGateway() ([]httpapi.Mount, error) {
	var admin http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"error":"no gateway runs in this daemon: add a gateway: section to serve's config, or use the standalone gateway's admin API"}` + "\n"))
	})
	if c := a.cfg.Gateway; c != nil {
		if c.DataDir == "" {
			c.DataDir = filepath.Join(a.cfg.DataDir, "gateway")
		}
		opts, err := c.Options()
		if err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
		opts.Logger, opts.Now = a.log, a.now
		// Findings also travel inside the events (data.findings); gatewayFindings publishes
		// them, so they are not passed twice here.
		opts.Reporter = gateway.ReporterFunc(func(ctx context.Context, evs []event.Event, _ []finding.Finding) {
			if err := a.report(ctx, evs, nil); err != nil {
				a.log.Warn("gateway report", "err", err)
			}
		})
		g, err := gateway.New(opts)
		if err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
		a.gw = g
		admin = gateway.AdminHandler(g)
	}
	a.events.Subscribe("gateway-findings", a.gatewayFindings)
	roles := map[string][]string{"GET": httpapi.ReadRoles, "POST": httpapi.RespondRoles, "DELETE": httpapi.RespondRoles}
	var mounts []httpapi.Mount
	for _, p := range gatewayRoutes {
		method, _, _ := strings.Cut(p, " ")
		mounts = append(mounts, httpapi.Mount{Pattern: p, Roles: roles[method], Handler: admin})
	}
	return mounts, nil
}

// startGateway listens on the gateway's own address.
func (a *App) startGateway() error {
	if a.gw == nil {
		return nil
	}
	addr := a.cfg.Gateway.Listen
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("gateway: listen on %s: %w", addr, err)
	}
	a.gwLn = ln
	// The gateway's own front end serves plain HTTP/1.1 and hands the rest to net/http.
	front := gateway.NewServer(a.gw, gateway.ServerOptions{ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second})
	a.gwSrv = front
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		if err := front.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("gateway stopped", "err", err)
		}
	}()
	a.log.Info("gateway serving", "addr", ln.Addr().String())
	return nil
}

// GatewayAddr is the embedded gateway's address, if one runs.
func (a *App) GatewayAddr() string {
	if a.gwLn == nil {
		return ""
	}
	return a.gwLn.Addr().String()
}

func (a *App) stopGateway(ctx context.Context) {
	if a.gwSrv != nil && a.gwSrv.Shutdown(ctx) != nil {
		a.gwSrv.Close()
	}
	if a.gw != nil {
		a.gw.Close()
	}
}

func (a *App) gwBlock(ctx context.Context, client string, ttl time.Duration, reason string) error {
	b := gateway.Block{Client: client, Reason: reason, Source: "response"}
	if ttl > 0 {
		b.Until = a.now().Add(ttl)
	}
	_, err := a.gw.Blocks().Add(b)
	return err
}

// maxFindingsPerEvent bounds what one reported event may carry.
const maxFindingsPerEvent = 100

// gatewayFindings turns the findings a gateway reports inside its aggregated
// pipewarden.inference.request events (data.findings) into findings, for the standalone and
// the embedded gateway alike.
func (a *App) gatewayFindings(ctx context.Context, evs []event.Event) {
	var out []finding.Finding
	for i := range evs {
		ev := &evs[i]
		if ev.Type != gateway.EventType || !bytes.Contains(ev.Data, []byte(`"findings"`)) {
			continue
		}
		var d struct {
			Findings []finding.Finding `json:"findings"`
		}
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			continue
		}
		for j, f := range d.Findings {
			if j == maxFindingsPerEvent {
				a.log.Warn("gateway event carries too many findings; the rest are ignored", "event", ev.ID, "findings", len(d.Findings))
				break
			}
			if err := f.Validate(); err != nil {
				a.log.Warn("gateway finding rejected", "event", ev.ID, "err", err)
				continue
			}
			f.ID = "" // ids are the daemon's
			if len(f.EventIDs) == 0 {
				f.EventIDs = []string{ev.ID}
			}
			out = append(out, f)
		}
	}
	if len(out) > 0 {
		a.publishFindingsWait(ctx, out)
	}
}
