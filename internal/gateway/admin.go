package gateway

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"
)

// Stats are the gateway's own counters.
type Stats struct {
	Mode             Mode    `json:"mode"`
	Clients          int     `json:"clients"`
	Blocks           int     `json:"blocks"`
	QueueLength      int     `json:"queue_length"`
	QueueCapacity    int     `json:"queue_capacity"`
	DroppedSamples   int64   `json:"dropped_samples"`
	DetectedQueries  int64   `json:"detected_queries"`
	DetectorNsPerRow float64 `json:"detector_ns_per_query"`
	Faults           int64   `json:"faults"`
}

// Stats returns the gateway's counters.
func (g *Gateway) Stats() Stats {
	s := Stats{Mode: g.opts.Mode, QueueLength: len(g.queue), QueueCapacity: cap(g.queue),
		DroppedSamples: g.dropped.Load(), DetectedQueries: g.processed.Load(), Faults: g.faults.Load(),
		Blocks: len(g.blocks.List())}
	g.clients.mu.Lock()
	s.Clients = g.clients.cache.Len()
	g.clients.mu.Unlock()
	if s.DetectedQueries > 0 {
		s.DetectorNsPerRow = float64(g.detectNs.Load()) / float64(s.DetectedQueries)
	}
	return s
}

// Clients returns every known client's counters, state and last findings, most recent first.
func (g *Gateway) Clients() []ClientStats { return g.clients.list(g.blocks) }

// AdminHandler serves the gateway's management API:
//
//	GET    /v1/gateway/blocks            the active blocks
//	POST   /v1/gateway/blocks            {"client", "ttl" ("1h"; empty: until removed), "reason"}
//	DELETE /v1/gateway/blocks?client=ID  remove a block
//	GET    /v1/gateway/clients           per-client counters, state, last findings; gateway stats
//
// It does no authentication: the daemon mounts it behind its own, the standalone gateway
// behind a token on a loopback listener.
func AdminHandler(g *Gateway) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/gateway/blocks", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"blocks": g.Blocks().List()})
	})
	mux.HandleFunc("POST /v1/gateway/blocks", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Client string `json:"client"`
			TTL    string `json:"ttl"`
			Reason string `json:"reason"`
			Source string `json:"source"`
		}
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid block request: " + err.Error()})
			return
		}
		b := Block{Client: req.Client, Reason: req.Reason, Source: req.Source}
		if b.Source != "" && b.Source != "manual" && b.Source != "response" {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "source must be manual or response"})
			return
		}
		if req.TTL != "" {
			d, err := time.ParseDuration(req.TTL)
			if err != nil || d <= 0 {
				writeJSON(w, http.StatusBadRequest, map[string]any{"error": "ttl must be a positive duration such as 30m or 24h"})
				return
			}
			b.Until = g.opts.Now().Add(d)
		}
		added, err := g.Blocks().Add(b)
		if errors.Is(err, ErrInvalidBlock) {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": err.Error()})
			return
		}
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]any{"error": err.Error(), "block": added})
			return
		}
		writeJSON(w, http.StatusCreated, added)
	})
	mux.HandleFunc("DELETE /v1/gateway/blocks", func(w http.ResponseWriter, r *http.Request) {
		client := strings.TrimSpace(r.URL.Query().Get("client"))
		if client == "" {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "client query parameter is required"})
			return
		}
		ok, err := g.Blocks().Remove(client)
		switch {
		case err != nil:
			writeJSON(w, http.StatusInternalServerError, map[string]any{"error": err.Error()})
		case !ok:
			writeJSON(w, http.StatusNotFound, map[string]any{"error": "client " + client + " is not blocked"})
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	})
	mux.HandleFunc("GET /v1/gateway/clients", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"clients": g.Clients(), "gateway": g.Stats()})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
