package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/store"
)

// AddFindings stores findings, giving an id to those without one.
func (s *Store) AddFindings(ctx context.Context, fs []finding.Finding) error {
	if len(fs) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for i := range fs {
		f := &fs[i]
		if f.ID == "" {
			f.ID = store.NewID()
		}
		if f.Time.IsZero() {
			f.Time = s.now().UTC()
		}
		body, err := json.Marshal(f)
		if err != nil {
			return fmt.Errorf("encode finding %s: %w", f.Rule, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO findings (id, rule, severity, subject_kind, subject_name, time, body) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			f.ID, f.Rule, int(f.Severity), f.Subject.Kind, f.Subject.Name, nanos(f.Time), body); err != nil {
			return fmt.Errorf("insert finding %s: %w", f.Rule, err)
		}
	}
	return tx.Commit()
}

// ListFindings returns findings newest first.
func (s *Store) ListFindings(ctx context.Context, q store.FindingQuery) (store.Page[finding.Finding], error) {
	var page store.Page[finding.Finding]
	before, err := store.DecodeCursor(q.Cursor)
	if err != nil {
		return page, err
	}
	limit := store.Limit(q.Limit)
	where := []string{"severity >= ?"}
	args := []any{int(q.MinSeverity)}
	if before > 0 {
		where = append(where, "seq < ?")
		args = append(args, before)
	}
	if q.Rule != "" {
		where = append(where, "rule = ?")
		args = append(args, q.Rule)
	}
	if q.SubjectName != "" {
		where = append(where, "subject_name = ?")
		args = append(args, q.SubjectName)
	}
	if !q.Since.IsZero() {
		where = append(where, "time >= ?")
		args = append(args, nanos(q.Since))
	}
	args = append(args, limit+1)
	rows, err := s.r.QueryContext(ctx, `SELECT seq, body FROM findings WHERE `+strings.Join(where, " AND ")+` ORDER BY seq DESC LIMIT ?`, args...)
	if err != nil {
		return page, fmt.Errorf("list findings: %w", err)
	}
	defer rows.Close()
	page.Items = []finding.Finding{}
	var last int64
	for rows.Next() {
		var seq int64
		var body []byte
		if err := rows.Scan(&seq, &body); err != nil {
			return page, err
		}
		if len(page.Items) == limit {
			page.Next = store.EncodeCursor(last)
			break
		}
		var f finding.Finding
		if err := json.Unmarshal(body, &f); err != nil {
			return page, fmt.Errorf("decode finding %d: %w", seq, err)
		}
		page.Items = append(page.Items, f)
		last = seq
	}
	return page, rows.Err()
}

// ListAlerts returns alerts by priority, highest first, then newest.
func (s *Store) ListAlerts(ctx context.Context, q store.AlertQuery) (store.Page[store.Alert], error) {
	var page store.Page[store.Alert]
	off, err := store.DecodeCursor(q.Cursor)
	if err != nil {
		return page, err
	}
	limit := store.Limit(q.Limit)
	where, args := "1=1", []any{}
	if q.State != "" {
		where, args = "state = ?", append(args, q.State)
	}
	args = append(args, limit+1, off)
	rows, err := s.r.QueryContext(ctx, `SELECT body FROM alerts WHERE `+where+` ORDER BY priority DESC, last_seen DESC, seq DESC LIMIT ? OFFSET ?`, args...)
	if err != nil {
		return page, fmt.Errorf("list alerts: %w", err)
	}
	defer rows.Close()
	page.Items = []store.Alert{}
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return page, err
		}
		if len(page.Items) == limit {
			page.Next = store.EncodeCursor(off + int64(limit))
			break
		}
		var a store.Alert
		if err := json.Unmarshal(body, &a); err != nil {
			return page, err
		}
		page.Items = append(page.Items, a)
	}
	return page, rows.Err()
}

// ListAssets returns assets in the order they were first seen.
func (s *Store) ListAssets(ctx context.Context, q store.AssetQuery) (store.Page[store.Asset], error) {
	var page store.Page[store.Asset]
	after, err := store.DecodeCursor(q.Cursor)
	if err != nil {
		return page, err
	}
	// Sightings not yet written are written first, so a listing is never behind the events.
	if err := s.FlushAssets(ctx); err != nil {
		return page, err
	}
	limit := store.Limit(q.Limit)
	where, args := "seq > ?", []any{after}
	if q.Kind != "" {
		where += " AND kind = ?"
		args = append(args, q.Kind)
	}
	args = append(args, limit+1)
	rows, err := s.adb.QueryContext(ctx, `SELECT seq, kind, name, first_seen, last_seen, events, last_event_id FROM assets WHERE `+where+` ORDER BY seq LIMIT ?`, args...)
	if err != nil {
		return page, fmt.Errorf("list assets: %w", err)
	}
	defer rows.Close()
	page.Items = []store.Asset{}
	var last int64
	for rows.Next() {
		var a store.Asset
		var seq, first, lastSeen int64
		if err := rows.Scan(&seq, &a.Kind, &a.Name, &first, &lastSeen, &a.Events, &a.LastEventID); err != nil {
			return page, err
		}
		if len(page.Items) == limit {
			page.Next = store.EncodeCursor(last)
			break
		}
		a.FirstSeen, a.LastSeen = fromNanos(first), fromNanos(lastSeen)
		page.Items = append(page.Items, a)
		last = seq
	}
	return page, rows.Err()
}

// CreateToken stores a token's hash and role.
func (s *Store) CreateToken(ctx context.Context, t store.Token) error {
	if !store.ValidRole(t.Role) {
		return fmt.Errorf("unknown role %q", t.Role)
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.now()
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO tokens (hash, name, role, created_at) VALUES (?, ?, ?, ?)`, t.Hash, t.Name, t.Role, nanos(t.CreatedAt))
	if err != nil {
		return fmt.Errorf("create token %q: %w", t.Name, err)
	}
	return nil
}

// LookupToken finds a token by the hex SHA-256 of its secret.
func (s *Store) LookupToken(ctx context.Context, hash string) (store.Token, error) {
	var t store.Token
	var created int64
	err := s.r.QueryRowContext(ctx, `SELECT hash, name, role, created_at FROM tokens WHERE hash = ?`, hash).Scan(&t.Hash, &t.Name, &t.Role, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return t, store.ErrNotFound
	}
	t.CreatedAt = fromNanos(created)
	return t, err
}

// CountTokens returns how many tokens are stored.
func (s *Store) CountTokens(ctx context.Context) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM tokens`).Scan(&n)
	return n, err
}

// ListTokens returns every token, oldest first.
func (s *Store) ListTokens(ctx context.Context) ([]store.Token, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT hash, name, role, created_at FROM tokens ORDER BY created_at, hash`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	out := []store.Token{}
	for rows.Next() {
		var t store.Token
		var created int64
		if err := rows.Scan(&t.Hash, &t.Name, &t.Role, &created); err != nil {
			return nil, err
		}
		t.CreatedAt = fromNanos(created)
		out = append(out, t)
	}
	return out, rows.Err()
}

// PutState stores a named blob.
func (s *Store) PutState(ctx context.Context, key string, value []byte) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO state (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
		key, value, nanos(s.now()))
	return err
}

// GetState reads a named blob.
func (s *Store) GetState(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := s.r.QueryRowContext(ctx, `SELECT value FROM state WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	return v, err
}
