package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/store"
	"github.com/pipewarden/pipewarden/internal/store/sqlite"
	"github.com/pipewarden/pipewarden/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "pw.db"), sqlite.Options{Now: now, Synchronous: "normal"})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pw.db")
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := storetest.Ev(t, "keep", "pipewarden.access.auth", "bob", time.Now())
	if _, err := s.AppendEvents(ctx, []event.Event{e}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatalf("reopen (migrations must be idempotent): %v", err)
	}
	defer s.Close()
	p, err := s.ListEvents(ctx, store.EventQuery{})
	if err != nil || len(p.Items) != 1 || p.Items[0].ID != "keep" {
		t.Fatalf("after reopen: %+v, %v", p.Items, err)
	}
}

func TestBadSynchronous(t *testing.T) {
	_, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "x.db"), sqlite.Options{Synchronous: "off"})
	if err == nil {
		t.Fatal("synchronous=off must be refused: it would lose acknowledged events")
	}
}
