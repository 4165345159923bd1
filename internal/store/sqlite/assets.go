package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pipewarden/pipewarden/internal/event"
)

// Assets are derived from events, so they are not written with every commit: each commit's
// asset sightings are added to an in-memory aggregate, which is written (one upsert per asset)
// inside an event commit at most once per Options.AssetFlush, before any asset listing, and at
// Close. The same transaction records the highest event seq the table reflects (assetsSeqKey);
// after a crash, Open replays the stored events above it, so no sighting is lost or counted
// twice. Writing every asset with every commit rewrote most of the assets table's pages each
// time and cost a third of the ingest rate.

// assetsSeqKey is the state row holding the highest event seq the assets table reflects.
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

// flushDue reports whether the pending aggregate should be written with the next commit.
// Callers hold s.amu.
func (s *Store) flushDue() bool {
	return len(s.pending) > 0 && s.now().Sub(s.flushedAt) >= s.assetFlush
}

// writeAssets upserts as and records upto as the highest event seq reflected, in tx.
func (s *Store) writeAssets(ctx context.Context, tx *sql.Tx, as assetSet, upto int64) error {
	if err := upsertAssets(ctx, tx, as); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO state (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
		assetsSeqKey, []byte(strconv.FormatInt(upto, 10)), nanos(s.now()))
	if err != nil {
		return fmt.Errorf("record assets position: %w", err)
	}
	return nil
}

// FlushAssets writes the pending asset aggregate now.
func (s *Store) FlushAssets(ctx context.Context) error {
	s.amu.Lock()
	defer s.amu.Unlock()
	if len(s.pending) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	if err := s.writeAssets(ctx, tx, s.pending, s.lastSeq); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit assets: %w", err)
	}
	s.pending, s.flushedAt = assetSet{}, s.now()
	return nil
}

// recoverAssets rebuilds the pending aggregate from the events stored after the last asset
// write (a crash since), reading them in pages.
func (s *Store) recoverAssets(ctx context.Context) error {
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
