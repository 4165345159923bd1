package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/store"
	"github.com/pipewarden/pipewarden/internal/store/sqlite"
	"github.com/pipewarden/pipewarden/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
		return mustOpen(t, filepath.Join(t.TempDir(), "pw.db"), sqlite.Options{Now: now, Synchronous: "normal"})
	})
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pw.db")
	ctx := context.Background()
	s := mustOpen(t, path, sqlite.Options{})
	e := storetest.Ev(t, "keep", "pipewarden.access.auth", "bob", time.Now())
	if _, err := s.AppendEvents(ctx, []event.Event{e}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
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

// copyDB copies a live store (both databases, files and WALs) as a crash would leave it on
// disk.
func copyDB(t *testing.T, from, to string) {
	t.Helper()
	for _, pair := range [][2]string{{from, to}, {strings.TrimSuffix(from, ".db") + "-assets.db", strings.TrimSuffix(to, ".db") + "-assets.db"}} {
		for _, suf := range []string{"", "-wal"} {
			b, err := os.ReadFile(pair[0] + suf)
			if os.IsNotExist(err) && suf == "-wal" {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(pair[1]+suf, b, 0o600); err != nil {
				t.Fatal(err)
			}
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
	s := mustOpen(t, filepath.Join(dir, "pw.db"), sqlite.Options{AssetFlush: time.Hour})
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
	batch(3)
	if err := s.FlushAssets(ctx); err != nil { // as the background writer would
		t.Fatal(err)
	}
	batch(4) // these sightings are only in memory (AssetFlush is an hour)
	batch(5)
	crashed := filepath.Join(dir, "crashed.db")
	copyDB(t, filepath.Join(dir, "pw.db"), crashed)

	r := mustOpen(t, crashed, sqlite.Options{AssetFlush: time.Hour})
	got := assetCounts(t, r)
	if got["endpoint/fraud-api"] != 12 || got["client/key-3f9a"] != 12 {
		t.Fatalf("after a crash: %v, want 12 sightings each", got)
	}
	// Listing wrote the recovered sightings; a clean close and reopen counts them once.
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = mustOpen(t, crashed, sqlite.Options{})
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
	s := mustOpen(t, path, sqlite.Options{})
	e := storetest.Ev(t, "old", "pipewarden.inference.request", "", time.Now())
	if _, err := s.AppendEvents(ctx, []event.Event{e}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = mustOpen(t, path, sqlite.Options{})
	defer s.Close()
	if got := assetCounts(t, s); got["endpoint/fraud-api"] != 1 {
		t.Fatalf("after reopen: %v", got)
	}
}

// A database from before assets had their own file hands its assets table and position over
// on first open, and empties the old table.
func TestAssetsMoveToTheirOwnFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pw.db")
	ctx := context.Background()
	s := mustOpen(t, path, sqlite.Options{})
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	var evs []event.Event
	for i := range 3 {
		evs = append(evs, storetest.Ev(t, fmt.Sprintf("e%d", i), "pipewarden.inference.request", "", t0))
	}
	if _, err := s.AppendEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Make it look like the old layout: assets in the main database, up to event 2 of 3.
	for _, f := range []string{"pw-assets.db", "pw-assets.db-wal", "pw-assets.db-shm"} {
		os.Remove(filepath.Join(dir, f))
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO assets (kind, name, first_seen, last_seen, events, last_event_id) VALUES ('endpoint', 'fraud-api', 1, 2, 2, 'e1'), ('model', 'old-model', 5, 6, 7, 'x')`,
		`UPDATE state SET value = '2' WHERE key = 'store.assets_seq'`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s = mustOpen(t, path, sqlite.Options{})
	got := assetCounts(t, s)
	if got["endpoint/fraud-api"] != 3 || got["model/old-model"] != 7 || got["client/key-3f9a"] != 1 {
		t.Fatalf("after the move: %v", got)
	}
	s.Close()
	db, _ = sql.Open("sqlite", "file:"+path)
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM assets`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("old assets table keeps %d rows (%v)", n, err)
	}
	s = mustOpen(t, path, sqlite.Options{})
	if got := assetCounts(t, s); got["endpoint/fraud-api"] != 3 || got["model/old-model"] != 7 {
		t.Fatalf("after reopen: %v", got)
	}
	// An assets file lost after the move is rebuilt from the stored events.
	s.Close()
	for _, f := range []string{"pw-assets.db", "pw-assets.db-wal", "pw-assets.db-shm"} {
		os.Remove(filepath.Join(dir, f))
	}
	s = mustOpen(t, path, sqlite.Options{})
	defer s.Close()
	if got := assetCounts(t, s); got["endpoint/fraud-api"] != 3 || got["client/key-3f9a"] != 3 {
		t.Fatalf("rebuilt: %v", got)
	}
}

// A database from before event ranges gets them for its events when it is opened: filters on
// old events keep working.
func TestEventRangesMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pw.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"0001_init.sql", "0002_alerts.sql", "0003_assets_position.sql"} {
		b, err := os.ReadFile(filepath.Join("migrations", f))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(string(b)); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	if _, err := db.Exec(`CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1), (2), (3)`); err != nil {
		t.Fatal(err)
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3000; i++ {
		typ, subj := "pipewarden.access.auth", fmt.Sprintf("user-%d", i%7)
		if i%1000 == 0 {
			typ = "pipewarden.model.artifact"
		}
		raw := fmt.Sprintf(`{"specversion":"1.0","id":"o%d","source":"//x","type":%q,"subject":%q,"data":{}}`, i, typ, subj)
		if _, err := tx.Exec(`INSERT INTO events (id, type, source, subject, time, received_at, raw) VALUES (?, ?, '//x', ?, ?, ?, ?)`,
			fmt.Sprintf("o%d", i), typ, subj, i, i, raw); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s := mustOpen(t, path, sqlite.Options{})
	defer s.Close()
	list := func(q store.EventQuery) []string { return listIDs(t, s, q) }
	// Every migrated event has its ranges (0004), so the position is at the newest (0005) and
	// opening rebuilt none.
	if rows, through := rangesOnDisk(t, path); through != "3000" || rows != (2+7)*3 { // (types + subjects) × blocks of 1024 seqs
		t.Fatalf("migrated: %d ranges, position %s; want 27 through 3000", rows, through)
	}
	if got := list(store.EventQuery{Type: "pipewarden.model.artifact", Limit: 2}); fmt.Sprint(got) != "[o1000 o2000 o3000]" {
		t.Fatalf("type filter on migrated events: %v", got)
	}
	if got := list(store.EventQuery{Subject: "user-3", Limit: 1000}); len(got) != 429 || got[0] != "o3" || got[428] != "o2999" {
		t.Fatalf("subject filter on migrated events: %d %v", len(got), got[:min(3, len(got))])
	}
}

// A commit naming many subjects records its ranges with multi-row statements; every subject
// is found again, and retention leaves the ranges of what it keeps.
func TestEventRangesManySubjects(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	s := mustOpen(t, filepath.Join(t.TempDir(), "pw.db"), sqlite.Options{Now: func() time.Time { return now }})
	defer s.Close()
	ctx := context.Background()
	for round := range 3 {
		var evs []event.Event
		for i := range 150 {
			evs = append(evs, storetest.Ev(t, fmt.Sprintf("r%d-%d", round, i), "pipewarden.access.auth", fmt.Sprintf("user-%d", i%60), now))
		}
		if _, err := s.AppendEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Hour)
	}
	count := func(subject string) int {
		n := 0
		q := store.EventQuery{Subject: subject, Limit: 7}
		for {
			p, err := s.ListEvents(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			n += len(p.Items)
			if p.Next == "" {
				return n
			}
			q.Cursor = p.Next
		}
	}
	// 150 events over 60 users a commit: users 0-29 appear three times, 30-59 twice.
	for u, want := range map[string]int{"user-0": 9, "user-29": 9, "user-30": 6, "user-59": 6, "user-60": 0} {
		if n := count(u); n != want {
			t.Fatalf("%s: %d events, want %d", u, n, want)
		}
	}
	if _, err := s.DeleteEventsBefore(ctx, now.Add(-90*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n := count("user-0"); n != 3 {
		t.Fatalf("user-0 after retention: %d events, want 3", n)
	}
}

// Retention running while events arrive never takes the ranges of events it keeps: a filter
// finds every new event, even when retention emptied the table just before they came.
func TestRetentionKeepsRangesOfNewEvents(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := mustOpen(t, filepath.Join(t.TempDir(), "pw.db"), sqlite.Options{Now: clock, Synchronous: "normal"})
	defer s.Close()
	ctx := context.Background()
	cutoff := now.Add(time.Minute)
	for round := range 20 {
		// Old events, then new ones while retention of the old runs alongside.
		mu.Lock()
		now = cutoff.Add(-time.Second)
		mu.Unlock()
		if _, err := s.AppendEvents(ctx, []event.Event{storetest.Ev(t, fmt.Sprintf("old%d", round), "pipewarden.access.auth", "u", now)}); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		now = cutoff.Add(time.Second)
		mu.Unlock()
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range 20 {
				if _, err := s.DeleteEventsBefore(ctx, cutoff); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		for i := range 10 {
			if _, err := s.AppendEvents(ctx, []event.Event{storetest.Ev(t, fmt.Sprintf("new%d-%d", round, i), "pipewarden.model.artifact", "m", now)}); err != nil {
				t.Fatal(err)
			}
		}
		<-done
		p, err := s.ListEvents(ctx, store.EventQuery{Type: "pipewarden.model.artifact", Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if want := 10 * (round + 1); len(p.Items) != want {
			t.Fatalf("round %d: the type filter finds %d new events, want %d", round, len(p.Items), want)
		}
	}
}

// rangesOnDisk reads, beside the store, how many event ranges the table holds and its position
// (every event up to it has its ranges written).
func rangesOnDisk(t *testing.T, path string) (rows int, through string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(`SELECT COUNT(*) FROM event_ranges`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT value FROM state WHERE key = 'store.ranges_seq'`).Scan(&through); err != nil {
		t.Fatal(err)
	}
	return rows, through
}

// listIDs pages through q and returns the ids of every event it lists, in order.
func listIDs(t *testing.T, s store.Store, q store.EventQuery) []string {
	t.Helper()
	ids := []string{}
	for {
		p, err := s.ListEvents(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Items {
			ids = append(ids, e.ID)
		}
		if p.Next == "" {
			return ids
		}
		q.Cursor = p.Next
	}
}

// Small commits leave their ranges in memory; filters find their events all the same (in the
// table's ranges, then after the position), a large commit writes them, and so does the first
// small commit once they are a second old.
func TestSmallCommitRangesWaitAndAreFound(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "pw.db")
	s := mustOpen(t, path, sqlite.Options{Now: func() time.Time { return now }})
	defer s.Close()
	ctx := context.Background()
	types := []string{"pipewarden.access.auth", "pipewarden.model.artifact"}
	want := map[string][]string{} // by type and by subject, in arrival order
	n := 0
	add := func(k int) {
		var evs []event.Event
		for range k {
			n++
			id, typ, subj := fmt.Sprintf("e%d", n), types[n%2], fmt.Sprintf("u%d", n%3)
			evs = append(evs, storetest.Ev(t, id, typ, subj, now))
			want[typ] = append(want[typ], id)
			want[subj] = append(want[subj], id)
		}
		if _, err := s.AppendEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
	}
	lastSeq := func() string { // the seq of the newest event
		t.Helper()
		p, err := s.ListEvents(ctx, store.EventQuery{Limit: 1000})
		if err != nil || len(p.Items) == 0 {
			t.Fatal(len(p.Items), err)
		}
		return fmt.Sprint(p.Items[len(p.Items)-1].Seq)
	}
	check := func(stage string) {
		t.Helper()
		for _, typ := range types {
			if got := listIDs(t, s, store.EventQuery{Type: typ, Limit: 3}); fmt.Sprint(got) != fmt.Sprint(want[typ]) {
				t.Fatalf("%s: type %s: %v, want %v", stage, typ, got, want[typ])
			}
		}
		for _, subj := range []string{"u0", "u1", "u2"} {
			if got := listIDs(t, s, store.EventQuery{Subject: subj, Limit: 2}); fmt.Sprint(got) != fmt.Sprint(want[subj]) {
				t.Fatalf("%s: subject %s: %v, want %v", stage, subj, got, want[subj])
			}
		}
	}
	for range 10 {
		add(1)
	}
	if rows, through := rangesOnDisk(t, path); rows != 0 || through != "0" {
		t.Fatalf("after small commits: %d ranges written, position %s; want none yet", rows, through)
	}
	check("pending")
	// A retry of stored ids is no new event and changes nothing.
	if ins, err := s.AppendEvents(ctx, []event.Event{storetest.Ev(t, "e3", types[1], "u0", now)}); err != nil || ins != 0 {
		t.Fatalf("retry: %d, %v", ins, err)
	}
	add(40) // large: writes the pending ranges with its own
	written := lastSeq()
	if rows, through := rangesOnDisk(t, path); rows == 0 || through != written {
		t.Fatalf("after a large commit: %d ranges, position %s; want all through %s", rows, through, written)
	}
	check("written")
	add(1)
	add(1)
	if _, through := rangesOnDisk(t, path); through != written {
		t.Fatalf("small commits moved the position to %s", through)
	}
	check("written and pending")
	now = now.Add(2 * time.Second)
	add(1)
	if _, through := rangesOnDisk(t, path); through != lastSeq() {
		t.Fatalf("a small commit after a second: position %s, want %s", through, lastSeq())
	}
	check("aged out")
}

// Ranges still in memory at a crash are written from the events at the next open; a clean close
// writes them itself.
func TestPendingRangesSurviveCrashAndClose(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pw.db")
	ctx := context.Background()
	s := mustOpen(t, path, sqlite.Options{})
	now := time.Now()
	for i := range 5 {
		if _, err := s.AppendEvents(ctx, []event.Event{storetest.Ev(t, fmt.Sprintf("c%d", i), "pipewarden.access.auth", "bob", now)}); err != nil {
			t.Fatal(err)
		}
	}
	crashed := filepath.Join(dir, "crashed.db")
	copyDB(t, path, crashed)
	r := mustOpen(t, crashed, sqlite.Options{})
	if rows, through := rangesOnDisk(t, crashed); rows != 2 || through != "5" {
		t.Fatalf("after a crash and reopen: %d ranges, position %s; want 2 through 5", rows, through)
	}
	if got := listIDs(t, r, store.EventQuery{Subject: "bob"}); fmt.Sprint(got) != "[c0 c1 c2 c3 c4]" {
		t.Fatalf("after a crash: %v", got)
	}
	r.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if rows, through := rangesOnDisk(t, path); rows != 2 || through != "5" {
		t.Fatalf("after close: %d ranges, position %s; want 2 through 5", rows, through)
	}
}

// A missing position row (never written by a migration, say) is written back by the next
// commit that writes ranges, so the position keeps moving.
func TestRangesPositionRowRecreated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pw.db")
	ctx := context.Background()
	s := mustOpen(t, path, sqlite.Options{})
	defer s.Close()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM state WHERE key = 'store.ranges_seq'`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	var evs []event.Event
	for i := range 20 { // a large commit: writes its ranges and the position
		evs = append(evs, storetest.Ev(t, fmt.Sprintf("r%d", i), "pipewarden.access.auth", "bob", time.Now()))
	}
	if _, err := s.AppendEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if _, through := rangesOnDisk(t, path); through != "20" {
		t.Fatalf("position %s after a large commit, want 20", through)
	}
	if got := listIDs(t, s, store.EventQuery{Subject: "bob"}); len(got) != 20 {
		t.Fatalf("subject filter: %d events, want 20", len(got))
	}
}

// mustOpen opens the store at path or fails the test.
func mustOpen(t *testing.T, path string, o sqlite.Options) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
