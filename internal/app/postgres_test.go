package app_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pipewarden/pipewarden/internal/config"
)

// TestScaleOutStoreRoundTrip runs the daemon on PostgreSQL: ingest, read back, assets, findings.
func TestScaleOutStoreRoundTrip(t *testing.T) {
	dsn := os.Getenv("PIPEWARDEN_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("PIPEWARDEN_TEST_POSTGRES is not set; .ci/run sets it")
	}
	schema := fmt.Sprintf("pwapp_%d", time.Now().UnixNano())
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE") })
	u, _ := url.Parse(dsn)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	h := start(t, func(c *config.Config) {
		c.Store.Driver = "postgres"
		c.Store.Postgres.DSN = u.String()
	}, nil)
	if h.token == "" {
		t.Fatal("no admin token bootstrapped on postgres")
	}
	batch := "[" + evJSON("pg1", "pipewarden.access.change") + "," + evJSON("pg2", "pipewarden.inference.request") + "]"
	if code, _, b := h.do("POST", "/v1/events", h.token, ce, batch); code != 202 {
		t.Fatal(code, b)
	}
	_, _, body := h.do("GET", "/v1/events", h.token, "", "")
	if n := len(body["items"].([]any)); n != 2 {
		t.Fatalf("events on postgres: %d", n)
	}
	waitFindings(t, h, "?rule=access_admin_escalation", func(it []any) bool { return len(it) == 1 })
}
