package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/store"
)

// AppendEvents inserts evs in one transaction; ids already present are skipped.
func (s *Store) AppendEvents(ctx context.Context, evs []event.Event) (int, error) {
	if len(evs) == 0 {
		return 0, nil
	}
	now := nanos(s.now())
	assets := assetSet{}
	inserted := 0
	var maxSeq int64
	record := func(ev *event.Event) {
		inserted++
		maxSeq = max(maxSeq, ev.Seq)
		assets.add(ev)
	}
	var plan rangePlan
	s.rmu.Lock()
	err := s.withEventTx(ctx, func(tx *rawTx) error {
		// Full chunks go through one multi-row statement (far fewer statement executions).
		// This connection is the only writer and seq is AUTOINCREMENT, so a statement that
		// inserted every row gave them the consecutive seqs ending at its last insert rowid;
		// only when some ids were already stored are the new rows looked up, so retries never
		// count twice.
		vals := make([]driver.Value, 0, insertChunk*7)
		i := 0
		for ; i+insertChunk <= len(evs); i += insertChunk {
			vals = vals[:0]
			chunk := evs[i : i+insertChunk]
			for j := range chunk {
				ev := &chunk[j]
				vals = append(vals, ev.ID, ev.Type, ev.Source, ev.Subject, nanos(ev.Time), now, []byte(ev.Raw))
			}
			res, err := tx.exec(tx.c.multi, vals...)
			if err != nil {
				return fmt.Errorf("insert events: %w", err)
			}
			n, err1 := res.RowsAffected()
			last, err2 := res.LastInsertId()
			if err := errors.Join(err1, err2); err != nil {
				return fmt.Errorf("insert events: %w", err)
			}
			if n == int64(len(chunk)) {
				for j := range chunk {
					chunk[j].Seq = last - n + 1 + int64(j)
					record(&chunk[j])
				}
				continue
			}
			if err := newSeqs(tx, chunk, n, last); err != nil {
				return err
			}
			for j := range chunk {
				if chunk[j].Seq != 0 {
					record(&chunk[j])
				}
			}
		}
		clear(vals)
		for ; i < len(evs); i++ {
			ev := &evs[i]
			ev.Seq = 0
			res, err := tx.exec(tx.c.ins, ev.ID, ev.Type, ev.Source, ev.Subject, nanos(ev.Time), now, []byte(ev.Raw))
			if err != nil {
				return fmt.Errorf("insert event %q: %w", ev.ID, err)
			}
			if n, _ := res.RowsAffected(); n == 1 {
				if ev.Seq, err = res.LastInsertId(); err != nil {
					return fmt.Errorf("insert event %q: %w", ev.ID, err)
				}
				record(ev)
			}
		}
		plan = s.planRanges(evs, inserted)
		return plan.apply(tx)
	})
	if err != nil {
		s.rmu.Unlock()
		for i := range evs {
			evs[i].Seq = 0 // nothing of a failed commit is stored
		}
		return 0, err
	}
	s.pend = plan.next
	s.rmu.Unlock()
	// Assets go in aggregate, written apart (see assets.go).
	s.noteAssets(assets, maxSeq)
	return inserted, nil
}

// newSeqs sets the seq of each event of chunk that one statement stored (n rows, the last with
// seq last) and 0 for the others: ids stored before, or repeated within the chunk.
func newSeqs(tx *rawTx, chunk []event.Event, n, last int64) error {
	fresh := make(map[string]int64, n)
	if n > 0 {
		err := tx.query(`SELECT id, seq FROM events WHERE seq <= ? ORDER BY seq DESC LIMIT ?`, []driver.Value{last, n},
			func(row []driver.Value) error {
				id, ok1 := row[0].(string)
				seq, ok2 := row[1].(int64)
				if !ok1 || !ok2 {
					return fmt.Errorf("read new event seqs: unexpected row %T %T", row[0], row[1])
				}
				fresh[id] = seq
				return nil
			})
		if err != nil {
			return fmt.Errorf("read new event seqs: %w", err)
		}
	}
	for j := range chunk {
		chunk[j].Seq = fresh[chunk[j].ID]
		delete(fresh, chunk[j].ID) // a duplicate later in the chunk is not new
	}
	return nil
}

// seqRange is the seqs of one type's or subject's events in a commit (or, merged, in several).
type seqRange struct{ first, last int64 }

// writeRanges records, per type and per subject, the range of seqs that events with it span
// (the filters of ListEvents read these instead of per-event indexes).
func writeRanges(tx *rawTx, ranges rangeSet) error {
	// A small commit's few ranges go through the prepared one-row statement; a large commit's
	// many through multi-row statements, whose parsing its size pays for.
	if len(ranges) <= 16 {
		for k, r := range ranges {
			if _, err := tx.exec(tx.c.insRng, k.kind, k.key, r.first, r.last); err != nil {
				return fmt.Errorf("record event ranges: %w", err)
			}
		}
		return nil
	}
	const chunk = 200
	vals := make([]driver.Value, 0, 4*min(len(ranges), chunk))
	n := 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		q := `INSERT INTO event_ranges (kind, key, first_seq, last_seq) VALUES ` + strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?),", n), ",")
		if err := tx.execSQL(q, vals); err != nil {
			return fmt.Errorf("record event ranges: %w", err)
		}
		vals, n = vals[:0], 0
		return nil
	}
	for k, r := range ranges {
		vals = append(vals, k.kind, k.key, r.first, r.last)
		if n++; n == chunk {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// ListEvents returns events in arrival order. A type or subject filter reads the ranges of
// seqs that hold that type or subject (writeRanges) and scans only those.
func (s *Store) ListEvents(ctx context.Context, q store.EventQuery) (store.Page[store.StoredEvent], error) {
	var page store.Page[store.StoredEvent]
	after, err := store.DecodeCursor(q.Cursor)
	if err != nil {
		return page, err
	}
	limit := store.Limit(q.Limit)
	var where []string
	var args []any
	if q.Type != "" {
		where = append(where, "type = ?")
		args = append(args, q.Type)
	}
	if q.Subject != "" {
		where = append(where, "subject = ?")
		args = append(args, q.Subject)
	}
	if !q.Since.IsZero() {
		where = append(where, "time >= ?")
		args = append(args, nanos(q.Since))
	}
	if !q.Until.IsZero() {
		where = append(where, "time < ?")
		args = append(args, nanos(q.Until))
	}
	page.Items = []store.StoredEvent{}
	scan := func(lo, hi int64) error { // events with lo < seq <= hi (hi 0: no bound)
		cond := append([]string{"seq > ?"}, where...)
		a := append([]any{lo}, args...)
		if hi > 0 {
			cond = append(cond, "seq <= ?")
			a = append(a, hi)
		}
		a = append(a, limit+1-len(page.Items))
		rows, err := s.r.QueryContext(ctx, `SELECT seq, id, type, subject, time, received_at, raw FROM events WHERE `+
			strings.Join(cond, " AND ")+` ORDER BY seq LIMIT ?`, a...)
		if err != nil {
			return fmt.Errorf("list events: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var e store.StoredEvent
			var t, r int64
			var raw []byte
			if err := rows.Scan(&e.Seq, &e.ID, &e.Type, &e.Subject, &t, &r, &raw); err != nil {
				return err
			}
			e.Time, e.ReceivedAt, e.Event = fromNanos(t), fromNanos(r), raw
			page.Items = append(page.Items, e)
		}
		return rows.Err()
	}
	if q.Type == "" && q.Subject == "" {
		err = scan(after, 0)
	} else {
		kind, key := "t", q.Type
		if q.Subject != "" {
			kind, key = "s", q.Subject
		}
		// Every event up to through has its ranges in the table (read first: the table only
		// grows past it); the ones after it are read directly (ranges.go).
		through, err1 := rangesSeq(ctx, s.r)
		if err1 != nil {
			return page, err1
		}
		pos := after
		err = s.scanRanges(ctx, kind, key, after, func(lo, hi int64) (bool, error) {
			pos = max(pos, hi)
			if err := scan(lo, hi); err != nil {
				return false, err
			}
			return len(page.Items) > limit, nil
		})
		if err == nil && len(page.Items) <= limit {
			err = scan(max(pos, through), 0)
		}
	}
	if err != nil {
		return page, err
	}
	if len(page.Items) > limit {
		page.Items = page.Items[:limit]
		page.Next = store.EncodeCursor(page.Items[limit-1].Seq)
	}
	return page, nil
}

// scanRanges calls fn with the seq ranges (lo, hi] that may hold the type (kind "t") or
// subject (kind "s") key, in seq order from after on, until fn says it has enough.
func (s *Store) scanRanges(ctx context.Context, kind, key string, after int64, fn func(lo, hi int64) (bool, error)) error {
	const batch = 256
	pos := after
	for {
		rows, err := s.r.QueryContext(ctx, `SELECT first_seq, last_seq FROM event_ranges WHERE kind = ? AND key = ? AND last_seq > ? ORDER BY last_seq LIMIT ?`, kind, key, pos, batch)
		if err != nil {
			return fmt.Errorf("list events: %w", err)
		}
		var ranges []seqRange
		for rows.Next() {
			var b seqRange
			if err := rows.Scan(&b.first, &b.last); err != nil {
				rows.Close()
				return err
			}
			ranges = append(ranges, b)
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("list events: %w", err)
		}
		for _, b := range ranges {
			done, err := fn(max(pos, b.first-1), b.last)
			if err != nil || done {
				return err
			}
			pos = b.last
		}
		if len(ranges) < batch {
			return nil
		}
	}
}

// DeleteEventsBefore removes events received before t, in chunks so the writer is never held
// for long. Arrival order is received order, so the scan stops at the first newer event.
func (s *Store) DeleteEventsBefore(ctx context.Context, t time.Time) (int64, error) {
	var total int64
	for {
		res, err := s.w.ExecContext(ctx, `DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE received_at < ? ORDER BY seq LIMIT 5000)`, nanos(t))
		if err != nil {
			return total, fmt.Errorf("delete old events: %w", err)
		}
		n, _ := res.RowsAffected()
		total += n
		if n < 5000 {
			break
		}
	}
	// Ranges wholly before the oldest event left hold nothing any more.
	// Ranges are appended in commit order, so the ones wholly before the oldest event left are
	// (but for those a migration wrote) at the start of the table: find the last of them on a
	// reader, which holds up no commit, then delete up to it by rowid.
	var oldest int64
	if err := s.r.QueryRowContext(ctx, `SELECT COALESCE(MIN(seq), 9223372036854775807) FROM events`).Scan(&oldest); err != nil {
		return total, fmt.Errorf("delete old event ranges: %w", err)
	}
	var upto sql.NullInt64
	if err := s.r.QueryRowContext(ctx, `SELECT MAX(rowid) FROM event_ranges WHERE last_seq < ?`, oldest).Scan(&upto); err != nil {
		return total, fmt.Errorf("delete old event ranges: %w", err)
	}
	if upto.Valid {
		// The oldest event is read again by the delete itself: events (and their ranges) may
		// have been committed since the reader looked, and an empty table may have filled.
		if _, err := s.w.ExecContext(ctx, `DELETE FROM event_ranges WHERE rowid <= ? AND last_seq < (SELECT COALESCE(MIN(seq), 9223372036854775807) FROM events)`, upto.Int64); err != nil {
			return total, fmt.Errorf("delete old event ranges: %w", err)
		}
	}
	return total, nil
}
