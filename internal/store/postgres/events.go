package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/store"
)

// AppendEvents inserts evs in one transaction with one statement (arrays unnested server-side);
// RETURNING names the ids that were new, so retries never count twice.
func (s *Store) AppendEvents(ctx context.Context, evs []event.Event) (int, error) {
	if len(evs) == 0 {
		return 0, nil
	}
	now := nanos(s.now())
	n := len(evs)
	ids, types, sources, subjects := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	times, recv := make([]int64, n), make([]int64, n)
	raws := make([][]byte, n)
	for i := range evs {
		e := &evs[i]
		ids[i], types[i], sources[i], subjects[i] = e.ID, e.Type, e.Source, e.Subject
		times[i], recv[i], raws[i] = nanos(e.Time), now, e.Raw
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(ctx)
	rows, err := tx.Query(ctx, `INSERT INTO events (id, type, source, subject, time, received_at, raw)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bytea[])
		ORDER BY 1 ON CONFLICT (id) DO NOTHING RETURNING id, seq`, ids, types, sources, subjects, times, recv, raws)
	if err != nil {
		return 0, fmt.Errorf("insert events: %w", err)
	}
	fresh := make(map[string]int64, n)
	for rows.Next() {
		var id string
		var seq int64
		if err := rows.Scan(&id, &seq); err != nil {
			rows.Close()
			return 0, err
		}
		fresh[id] = seq
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("insert events: %w", err)
	}
	type agg struct {
		first, last, n int64
		lastID         string
	}
	type key struct{ kind, name string }
	assets := map[key]*agg{}
	var order []key
	inserted := 0
	for i := range evs {
		e := &evs[i]
		e.Seq = fresh[e.ID]
		delete(fresh, e.ID) // a duplicate later in the batch is not new
		if e.Seq == 0 {
			continue
		}
		inserted++
		t := nanos(e.Time)
		for _, a := range e.Assets {
			k := key{a.Kind, a.Name}
			g := assets[k]
			if g == nil {
				g = &agg{first: t, last: t}
				assets[k] = g
				order = append(order, k)
			}
			g.first, g.last = min(g.first, t), max(g.last, t)
			g.n++
			g.lastID = e.ID
		}
	}
	// A fixed order keeps concurrent instances from deadlocking on asset rows.
	sortKeys(order, func(a, b key) bool { return a.kind+"\x00"+a.name < b.kind+"\x00"+b.name })
	for _, k := range order {
		g := assets[k]
		if _, err := tx.Exec(ctx, `INSERT INTO assets (kind, name, first_seen, last_seen, events, last_event_id) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (kind, name) DO UPDATE SET last_seen = GREATEST(assets.last_seen, excluded.last_seen), events = assets.events + excluded.events, last_event_id = excluded.last_event_id`,
			k.kind, k.name, g.first, g.last, g.n, g.lastID); err != nil {
			return 0, fmt.Errorf("record asset %s %q: %w", k.kind, k.name, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	return inserted, nil
}

func sortKeys[K any](ks []K, less func(a, b K) bool) {
	for i := 1; i < len(ks); i++ {
		for j := i; j > 0 && less(ks[j], ks[j-1]); j-- {
			ks[j], ks[j-1] = ks[j-1], ks[j]
		}
	}
}

// where builds a WHERE clause with numbered placeholders.
type where struct {
	parts []string
	args  []any
}

func (w *where) add(cond string, arg any) {
	w.args = append(w.args, arg)
	w.parts = append(w.parts, strings.ReplaceAll(cond, "?", fmt.Sprintf("$%d", len(w.args))))
}

func (w *where) sql() string {
	if len(w.parts) == 0 {
		return "TRUE"
	}
	return strings.Join(w.parts, " AND ")
}

func (w *where) next() string {
	return fmt.Sprintf("$%d", len(w.args)+1)
}

// ListEvents returns events in arrival order.
func (s *Store) ListEvents(ctx context.Context, q store.EventQuery) (store.Page[store.StoredEvent], error) {
	var page store.Page[store.StoredEvent]
	after, err := store.DecodeCursor(q.Cursor)
	if err != nil {
		return page, err
	}
	limit := store.Limit(q.Limit)
	var w where
	w.add("seq > ?", after)
	if q.Type != "" {
		w.add("type = ?", q.Type)
	}
	if q.Subject != "" {
		w.add("subject = ?", q.Subject)
	}
	if !q.Since.IsZero() {
		w.add("time >= ?", nanos(q.Since))
	}
	if !q.Until.IsZero() {
		w.add("time < ?", nanos(q.Until))
	}
	lim := w.next()
	rows, err := s.pool.Query(ctx, `SELECT seq, id, type, subject, time, received_at, raw FROM events WHERE `+w.sql()+` ORDER BY seq LIMIT `+lim, append(w.args, limit+1)...)
	if err != nil {
		return page, fmt.Errorf("list events: %w", err)
	}
	defer rows.Close()
	page.Items = []store.StoredEvent{}
	for rows.Next() {
		var e store.StoredEvent
		var t, r int64
		var raw []byte
		if err := rows.Scan(&e.Seq, &e.ID, &e.Type, &e.Subject, &t, &r, &raw); err != nil {
			return page, err
		}
		e.Time, e.ReceivedAt, e.Event = fromNanos(t), fromNanos(r), raw
		page.Items = append(page.Items, e)
	}
	if err := rows.Err(); err != nil {
		return page, err
	}
	if len(page.Items) > limit {
		page.Items = page.Items[:limit]
		page.Next = store.EncodeCursor(page.Items[limit-1].Seq)
	}
	return page, nil
}

// DeleteEventsBefore removes events received before t, in chunks.
func (s *Store) DeleteEventsBefore(ctx context.Context, t time.Time) (int64, error) {
	var total int64
	for {
		tag, err := s.pool.Exec(ctx, `DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE received_at < $1 ORDER BY seq LIMIT 5000)`, nanos(t))
		if err != nil {
			return total, fmt.Errorf("delete old events: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < 5000 {
			return total, nil
		}
	}
}
