package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pipewarden/pipewarden/internal/alert"
	"github.com/pipewarden/pipewarden/internal/store/sqlite"
)

// alertDaemon serves a real alerting pipeline's API behind a bearer token, as the daemon does.
func alertDaemon(t *testing.T) (*httptest.Server, *alert.Pipeline, *sqlite.Store) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "pw.db"), sqlite.Options{Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	p, err := alert.New(context.Background(), alert.Options{Config: alert.DefaultConfig(), Store: st})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for _, r := range p.Handlers(func(*http.Request) string { return "cli-user" }) {
		h := r.Handler
		mux.HandleFunc(r.Pattern, func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer sekret" {
				w.WriteHeader(http.StatusUnauthorized)
				w.Write([]byte(`{"error":"unknown token"}`))
				return
			}
			h(w, r)
		})
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, p, st
}

func TestSilenceCommands(t *testing.T) {
	srv, _, _ := alertDaemon(t)
	t.Setenv("PIPEWARDEN_TOKEN", "sekret")
	s := []string{"--server", srv.URL}

	code, out, errOut := runMain(t, append([]string{"silence", "add", `rule="noisy"`, `subject=~"stag.*"`, "--duration", "2h", "--comment", "migration"}, s...)...)
	if code != 0 || len(strings.TrimSpace(out)) != 32 || !strings.Contains(errOut, "active") {
		t.Fatalf("add: %d %q %q", code, out, errOut)
	}
	id := strings.TrimSpace(out)
	code, out, _ = runMain(t, append([]string{"silence", "list"}, s...)...)
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, `rule="noisy",subject=~"stag.*"`) || !strings.Contains(out, "cli-user") {
		t.Fatalf("list: %d\n%s", code, out)
	}
	if code, out, _ = runMain(t, append([]string{"silence", "expire", id}, s...)...); code != 0 || !strings.Contains(out, "expired "+id) {
		t.Fatalf("expire: %d %q", code, out)
	}
	code, out, _ = runMain(t, append([]string{"silence", "list", "--state", "expired", "--format", "json"}, s...)...)
	var items []alert.SilenceView
	if code != 0 || json.Unmarshal([]byte(out), &items) != nil || len(items) != 1 || items[0].State != "expired" {
		t.Fatalf("list expired json: %d %q", code, out)
	}

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no comment", []string{"silence", "add", `rule="x"`}, "--comment"},
		{"bad matcher", []string{"silence", "add", `rule=="x"`, "--comment", "c"}, "matcher"},
		{"no operator", []string{"silence", "add", `rule`, "--comment", "c"}, "operator"},
		{"no matcher", []string{"silence", "add", "--comment", "c"}, "requires at least 1 arg"},
		{"bad end", []string{"silence", "add", `rule="x"`, "--comment", "c", "--end", "tomorrow"}, "--end"},
		{"bad state", []string{"silence", "list", "--state", "weird"}, "--state"},
		{"server refuses", []string{"silence", "add", `rule="x"`, "--comment", "c", "--duration", "-1h"}, "400"},
		{"unknown silence", []string{"silence", "expire", "nope"}, "404"},
		{"bad token", []string{"silence", "list", "--token", "wrong"}, "PIPEWARDEN_TOKEN"},
		{"bad server", []string{"silence", "list", "--server", "ftp://x"}, "--server"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.name != "bad server" {
				args = append(append([]string(nil), tc.args...), s...)
			}
			code, _, errOut := runMain(t, args...)
			if code != 2 || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errOut, tc.want)
			}
		})
	}
}
