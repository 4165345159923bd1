package postgres_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pipewarden/pipewarden/internal/store"
	"github.com/pipewarden/pipewarden/internal/store/postgres"
	"github.com/pipewarden/pipewarden/internal/store/storetest"
)

// dsn returns the test database or skips: CI sets PIPEWARDEN_TEST_POSTGRES.
func dsn(t *testing.T) string {
	d := os.Getenv("PIPEWARDEN_TEST_POSTGRES")
	if d == "" {
		t.Skip("PIPEWARDEN_TEST_POSTGRES is not set (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable); .ci/run sets it")
	}
	return d
}

var schemaSeq = time.Now().UnixNano()

// open gives each test its own schema, dropped afterwards.
func open(t *testing.T, now func() time.Time) store.Store {
	d := dsn(t)
	schemaSeq++
	schema := fmt.Sprintf("pwtest_%d", schemaSeq)
	s, err := postgres.Open(context.Background(), d, postgres.Options{Now: now, Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), d)
		if err == nil {
			conn.Exec(context.Background(), "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
			conn.Close(context.Background())
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, open)
}

func TestBadDSN(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := postgres.Open(ctx, "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2", postgres.Options{}); err == nil {
		t.Fatal("an unreachable database must be an error")
	}
}
