package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pipewarden/pipewarden/internal/event"
)

// Assets are derived from events, so they are neither written with every event commit nor
// kept in the events database. Each commit's sightings are added to an in-memory aggregate;
// a background goroutine writes it every few seconds (Options.AssetFlush), and before any
// asset listing and at Close, to a database file of their own beside the main one
// (<name>-assets.db). Its own file has its own write lock, so writing thousands of assets
// never holds up an event commit. The same transaction records the highest event seq the
// table reflects; after a crash, Open replays the stored events above it, so no sighting is
// lost or counted twice.

// assetsSeqKey is the main database's state row that said up to which event its own assets
// table was complete, before assets moved to their own file (migration 0003).
const assetsSeqKey = "store.assets_seq"

type assetKey struct{ kind, name string }

type assetAgg struct {
	first, last int64
	n           int64
	lastID      string
}

// assetSet aggregates sightings per asset.
type assetSet map[assetKey]*assetAgg

func (as assetSet) add(ev *event.Event) {
	t := nanos(ev.Time)
	for _, a := range ev.Assets {
		k := assetKey{a.Kind, a.Name}
		g := as[k]
		if g == nil {
			as[k] = &assetAgg{first: t, last: t, n: 1, lastID: ev.ID}
			continue
		}
		g.first, g.last = min(g.first, t), max(g.last, t)
		g.n++
		g.lastID = ev.ID
	}
}

// merge adds later sightings (o) to as.
func (as assetSet) merge(o assetSet) {
	for k, g := range o {
		p := as[k]
		if p == nil {
			as[k] = g
			continue
		}
		p.first, p.last = min(p.first, g.first), max(p.last, g.last)
		p.n += g.n
		p.lastID = g.lastID
	}
}

// assetsPath is the assets database beside the main one.
func assetsPath(path string) string {
	return strings.TrimSuffix(path, filepath.Ext(path)) + "-assets.db"
}

const assetsSchema = `
CREATE TABLE IF NOT EXISTS assets (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    first_seen    INTEGER NOT NULL,
    last_seen     INTEGER NOT NULL,
    events        INTEGER NOT NULL DEFAULT 0,
    last_event_id TEXT    NOT NULL DEFAULT '',
    UNIQUE (kind, name)
);
-- upto: the highest event seq the assets table reflects.
CREATE TABLE IF NOT EXISTS position (id INTEGER PRIMARY KEY CHECK (id = 1), upto INTEGER NOT NULL);`

// openAssets opens (creating if needed) the assets database. A new one takes over the assets
// the main database held before they had their own file.
func (s *Store) openAssets(ctx context.Context, path string) error {
	q := url.Values{}
	// synchronous=NORMAL whatever the main database's setting: the assets are derived from the
	// events, and a flush records the event position it reflects in the same transaction, so a
	// flush that a power loss takes back also takes back its position, and Open replays those
	// events again. Its syncs would otherwise queue on the disk with the event commits'.
	for _, p := range []string{"journal_mode(WAL)", "synchronous(NORMAL)", "busy_timeout(10000)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetConnMaxLifetime(0)
	s.adb = db
	if _, err := db.ExecContext(ctx, assetsSchema); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		_ = os.Chmod(f, 0o600)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM position`).Scan(&n); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if n > 0 {
		return nil
	}
	return s.adoptAssets(ctx)
}

// adoptAssets copies the main database's assets table and position into the new assets
// database, then empties the old table.
func (s *Store) adoptAssets(ctx context.Context) error {
	var upto int64
	var v []byte
	err := s.w.QueryRowContext(ctx, `SELECT value FROM state WHERE key = ?`, assetsSeqKey).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("read assets position: %w", err)
	default:
		if upto, err = strconv.ParseInt(strings.TrimSpace(string(v)), 10, 64); err != nil {
			return fmt.Errorf("assets position %q: %w", v, err)
		}
	}
	rows, err := s.w.QueryContext(ctx, `SELECT kind, name, first_seen, last_seen, events, last_event_id FROM assets ORDER BY seq`)
	if err != nil {
		return fmt.Errorf("read assets: %w", err)
	}
	type row struct {
		kind, name, last string
		first, seen, n   int64
	}
	var old []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.kind, &r.name, &r.first, &r.seen, &r.n, &r.last); err != nil {
			rows.Close()
			return err
		}
		old = append(old, r)
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("read assets: %w", err)
	}
	if len(old) == 0 {
		// Nothing to take over (a new database, or an assets file that went missing after
		// its move): the assets are rebuilt from every stored event.
		upto = 0
	}
	tx, err := s.adb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, r := range old {
		if _, err := tx.ExecContext(ctx, `INSERT INTO assets (kind, name, first_seen, last_seen, events, last_event_id) VALUES (?, ?, ?, ?, ?, ?)`,
			r.kind, r.name, r.first, r.seen, r.n, r.last); err != nil {
			return fmt.Errorf("copy assets: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO position (id, upto) VALUES (1, ?)`, upto); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("copy assets: %w", err)
	}
	if _, err := s.w.ExecContext(ctx, `DELETE FROM assets`); err != nil {
		return fmt.Errorf("empty the old assets table: %w", err)
	}
	return nil
}

// noteAssets adds a committed batch's sightings (events up to seq upto) to the aggregate.
func (s *Store) noteAssets(as assetSet, upto int64) {
	s.amu.Lock()
	s.pending.merge(as)
	s.lastSeq = max(s.lastSeq, upto)
	s.amu.Unlock()
}

// FlushAssets writes the pending asset aggregate now.
func (s *Store) FlushAssets(ctx context.Context) error {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.amu.Lock()
	snap, upto := s.pending, s.lastSeq
	s.pending = assetSet{}
	s.amu.Unlock()
	if len(snap) == 0 && upto <= s.flushedSeq {
		return nil
	}
	err := func() error {
		tx, err := s.adb.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		defer tx.Rollback()
		if err := upsertAssets(ctx, tx, snap); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE position SET upto = ? WHERE id = 1`, upto); err != nil {
			return fmt.Errorf("record assets position: %w", err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("commit assets: %w", err)
		}
		return nil
	}()
	if err != nil {
		// Put the sightings back in front of what arrived meanwhile.
		s.amu.Lock()
		snap.merge(s.pending)
		s.pending = snap
		s.amu.Unlock()
		return err
	}
	s.flushedSeq = upto
	return nil
}

// assetLoop writes the aggregate every Options.AssetFlush until Close.
func (s *Store) assetLoop() {
	defer close(s.assetDone)
	t := time.NewTicker(s.assetFlush)
	defer t.Stop()
	for {
		select {
		case <-s.stopAssets:
			return
		case <-t.C:
			// A failure keeps the sightings for the next round (and for Close).
			s.FlushAssets(context.Background())
		}
	}
}

// recoverAssets rebuilds the pending aggregate from the events stored after the assets
// database's position (a crash since), reading them in pages.
func (s *Store) recoverAssets(ctx context.Context) error {
	var upto int64
	if err := s.adb.QueryRowContext(ctx, `SELECT upto FROM position WHERE id = 1`).Scan(&upto); err != nil {
		return fmt.Errorf("read assets position: %w", err)
	}
	s.flushedSeq = upto
	if err := s.w.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM events`).Scan(&s.lastSeq); err != nil {
		return fmt.Errorf("read last event: %w", err)
	}
	// Stored events passed validation under the limits of their day, which may have been wider.
	dec := event.NewDecoder(event.Limits{MaxBodyBytes: 1 << 40, MaxEventBytes: 1 << 40, MaxDepth: 1 << 10}, time.Now)
	for after := upto; after < s.lastSeq; {
		rows, err := s.w.QueryContext(ctx, `SELECT seq, id, raw FROM events WHERE seq > ? ORDER BY seq LIMIT 1000`, after)
		if err != nil {
			return fmt.Errorf("replay events for assets: %w", err)
		}
		n := 0
		for rows.Next() {
			var seq int64
			var id string
			var raw []byte
			if err := rows.Scan(&seq, &id, &raw); err != nil {
				rows.Close()
				return err
			}
			n++
			after = seq
			evs, err := dec.Decode(raw)
			if err != nil || len(evs) != 1 {
				continue // an event this version can no longer read names no asset it knows
			}
			evs[0].ID = id
			s.pending.add(&evs[0])
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("replay events for assets: %w", err)
		}
		if n == 0 {
			break
		}
	}
	return nil
}

// upsertAssets records the aggregate with multi-row upserts (one statement per hundred).
func upsertAssets(ctx context.Context, tx *sql.Tx, assets assetSet) error {
	if len(assets) == 0 {
		return nil
	}
	keys := make([]assetKey, 0, len(assets))
	for k := range assets {
		keys = append(keys, k)
	}
	const chunk = 100
	args := make([]any, 0, chunk*6)
	for len(keys) > 0 {
		n := min(len(keys), chunk)
		args = args[:0]
		for _, k := range keys[:n] {
			g := assets[k]
			args = append(args, k.kind, k.name, g.first, g.last, g.n, g.lastID)
		}
		keys = keys[n:]
		q := `INSERT INTO assets (kind, name, first_seen, last_seen, events, last_event_id) VALUES ` +
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?),", n), ",") +
			` ON CONFLICT (kind, name) DO UPDATE SET first_seen = min(first_seen, excluded.first_seen), last_seen = max(last_seen, excluded.last_seen), events = events + excluded.events, last_event_id = excluded.last_event_id`
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("record assets: %w", err)
		}
	}
	return nil
}
