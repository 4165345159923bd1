package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/pipewarden/pipewarden/internal/event"
)

// Event ranges (writeRanges) cost a small commit as much as its event: a single event's commit
// wrote three rows and touched two more pages of the WAL for them, about 15 % of the daemon's CPU
// per single-event request. So a small commit's ranges wait in memory and are written, merged
// per type and subject, with a later commit: the next large one, or the first once
// maxPendingEvents events or maxPendingAge have gone by, or Close. The state row
// store.ranges_seq says up to which seq every event's ranges are in the table; it is written
// in the same transaction as the ranges. Filters read the table's ranges up to it and the events
// after it directly (rangesTail), so a pending range is never missed; after a crash, Open writes
// the ranges of the events after it (recoverRanges). A merged range may span events of other
// types and subjects; the filters check every row anyway.
const (
	smallCommit      = 16 // events; a larger commit writes its ranges (and the pending ones) at once
	maxPendingEvents = 1024
	maxPendingAge    = time.Second
	rangesSeqKey     = "store.ranges_seq"
)

type rangeKey struct{ kind, key string }

// rangeSet is ranges by type (kind "t") and subject (kind "s").
type rangeSet map[rangeKey]seqRange

func (rs rangeSet) add(ev *event.Event) {
	if ev.Seq == 0 {
		return
	}
	rs.extend(rangeKey{"t", ev.Type}, seqRange{ev.Seq, ev.Seq})
	if ev.Subject != "" {
		rs.extend(rangeKey{"s", ev.Subject}, seqRange{ev.Seq, ev.Seq})
	}
}

func (rs rangeSet) extend(k rangeKey, r seqRange) {
	if c, ok := rs[k]; ok {
		r = seqRange{min(c.first, r.first), max(c.last, r.last)}
	}
	rs[k] = r
}

// pendingRanges is what the writer has not written yet. Only AppendEvents and Close touch it,
// under rmu.
type pendingRanges struct {
	set    rangeSet
	events int       // events they cover
	since  time.Time // when the first of them was committed
	last   int64     // highest seq among them
}

// rangePlan is what one commit does with ranges: keep them pending (next) or write them all
// (write, with the position through).
type rangePlan struct {
	next    pendingRanges
	write   rangeSet
	through int64
}

// planRanges decides, for a commit of evs (seqs assigned), whether its ranges wait or are
// written together with the pending ones.
func (s *Store) planRanges(evs []event.Event, inserted int) rangePlan {
	cur := rangeSet{}
	var maxSeq int64
	for i := range evs {
		cur.add(&evs[i])
		maxSeq = max(maxSeq, evs[i].Seq)
	}
	p := s.pend
	if len(evs) <= smallCommit && p.events+inserted < maxPendingEvents &&
		(p.events == 0 || s.now().Sub(p.since) < maxPendingAge) {
		if inserted == 0 {
			return rangePlan{next: p}
		}
		next := pendingRanges{set: make(rangeSet, len(p.set)+len(cur)), events: p.events + inserted, since: p.since, last: max(p.last, maxSeq)}
		if p.events == 0 {
			next.since = s.now()
		}
		for k, r := range p.set {
			next.set[k] = r
		}
		for k, r := range cur {
			next.set.extend(k, r)
		}
		return rangePlan{next: next}
	}
	write := cur
	for k, r := range p.set {
		write.extend(k, r)
	}
	return rangePlan{write: write, through: max(p.last, maxSeq)}
}

// apply writes a plan's ranges and position in the commit's transaction.
func (pl rangePlan) apply(tx *rawTx) error {
	if pl.through == 0 {
		return nil
	}
	if err := writeRanges(tx, pl.write); err != nil {
		return err
	}
	// An upsert, not an update: were the row ever missing, the position would otherwise never
	// move and every filtered listing would read ever more events directly.
	return tx.execSQL(`INSERT INTO state (key, value, updated_at) VALUES (?, ?, 0)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
		[]driver.Value{rangesSeqKey, strconv.FormatInt(pl.through, 10)})
}

// rangesSeq reads the position: every event up to it has its ranges in the table.
func rangesSeq(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int64, error) {
	var v string
	err := q.QueryRowContext(ctx, `SELECT value FROM state WHERE key = ?`, rangesSeqKey).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read event ranges position: %w", err)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("event ranges position %q: %w", v, err)
	}
	return n, nil
}

// flushRanges writes the pending ranges (Close).
func (s *Store) flushRanges(ctx context.Context) error {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.pend.events == 0 {
		return nil
	}
	pl := rangePlan{write: s.pend.set, through: s.pend.last}
	if err := s.withEventTx(ctx, pl.apply); err != nil {
		return fmt.Errorf("write event ranges: %w", err)
	}
	s.pend = pendingRanges{}
	return nil
}

// recoverRanges writes the ranges of events committed after the position, which a crash left
// pending, so that the tail filters read stays short.
func (s *Store) recoverRanges(ctx context.Context) error {
	through, err := rangesSeq(ctx, s.w)
	if err != nil {
		return err
	}
	rows, err := s.w.QueryContext(ctx, `SELECT seq, type, subject FROM events WHERE seq > ? ORDER BY seq`, through)
	if err != nil {
		return fmt.Errorf("recover event ranges: %w", err)
	}
	set := rangeSet{}
	var last int64
	for rows.Next() {
		var ev event.Event
		if err := rows.Scan(&ev.Seq, &ev.Type, &ev.Subject); err != nil {
			rows.Close()
			return fmt.Errorf("recover event ranges: %w", err)
		}
		set.add(&ev)
		last = ev.Seq
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("recover event ranges: %w", err)
	}
	if last == 0 {
		return nil
	}
	pl := rangePlan{write: set, through: last}
	if err := s.withEventTx(ctx, pl.apply); err != nil {
		return fmt.Errorf("recover event ranges: %w", err)
	}
	return nil
}
