package sqlite_test

import (
	"context"
	"fmt"
	"os"
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

// copyDB copies a live database (file and WAL) as a crash would leave it on disk.
func copyDB(t *testing.T, from, to string) {
	t.Helper()
	for _, suf := range []string{"", "-wal"} {
		b, err := os.ReadFile(from + suf)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to+suf, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func assetCounts(t *testing.T, s store.Store) map[string]int64 {
	t.Helper()
	p, err := s.ListAssets(context.Background(), store.AssetQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int64{}
	for _, a := range p.Items {
		m[a.Kind+"/"+a.Name] = a.Events
	}
	return m
}

// Asset sightings are written in aggregate; a crash before the next write loses none of them
// (they are replayed from the stored events) and counts none twice.
func TestAssetsSurviveCrashBetweenWrites(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(dir, "pw.db"), sqlite.Options{AssetFlush: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	n := 0
	batch := func(k int) {
		var evs []event.Event
		for range k {
			n++
			evs = append(evs, storetest.Ev(t, fmt.Sprintf("e%d", n), "pipewarden.inference.request", "", t0.Add(time.Duration(n)*time.Second)))
		}
		if _, err := s.AppendEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
	}
	batch(3) // the first commit writes the assets table and its position
	batch(4) // these sightings are only in memory (AssetFlush is an hour)
	batch(5)
	crashed := filepath.Join(dir, "crashed.db")
	copyDB(t, filepath.Join(dir, "pw.db"), crashed)

	r, err := sqlite.Open(ctx, crashed, sqlite.Options{AssetFlush: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	got := assetCounts(t, r)
	if got["endpoint/fraud-api"] != 12 || got["client/key-3f9a"] != 12 {
		t.Fatalf("after a crash: %v, want 12 sightings each", got)
	}
	// Listing wrote the recovered sightings; a clean close and reopen counts them once.
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r, err = sqlite.Open(ctx, crashed, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := assetCounts(t, r); got["endpoint/fraud-api"] != 12 {
		t.Fatalf("after reopen: %v", got)
	}
	ev, err := r.ListEvents(ctx, store.EventQuery{Limit: 1000})
	if err != nil || len(ev.Items) != 12 {
		t.Fatalf("events after a crash: %d, %v", len(ev.Items), err)
	}
	// The original store keeps aggregating and flushes what it holds when closed.
	if got := assetCounts(t, s); got["endpoint/fraud-api"] != 12 {
		t.Fatalf("live store: %v", got)
	}
}

// A database written before assets were aggregated reflects all its events: migrating it
// must not replay (and double) them.
func TestAssetPositionMigrationCountsOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pw.db")
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := storetest.Ev(t, "old", "pipewarden.inference.request", "", time.Now())
	if _, err := s.AppendEvents(ctx, []event.Event{e}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := assetCounts(t, s); got["endpoint/fraud-api"] != 1 {
		t.Fatalf("after reopen: %v", got)
	}
}
