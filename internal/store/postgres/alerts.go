package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pipewarden/pipewarden/internal/store"
)

// SaveAlerts inserts or replaces alerts by id in one transaction.
func (s *Store) SaveAlerts(ctx context.Context, as []store.AlertDetail) error {
	if len(as) == 0 {
		return nil
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	for i := range as {
		a := &as[i]
		if a.ID == "" {
			return fmt.Errorf("save alert %s: id is required", a.Fingerprint)
		}
		body, err := json.Marshal(a)
		if err != nil {
			return fmt.Errorf("encode alert %s: %w", a.ID, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO alerts (id, fingerprint, state, priority, last_seen, rule, body) VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (id) DO UPDATE SET fingerprint = excluded.fingerprint, state = excluded.state, priority = excluded.priority,
			last_seen = excluded.last_seen, rule = excluded.rule, body = excluded.body`,
			a.ID, a.Fingerprint, a.State, a.Priority, nanos(a.LastSeen), a.Rule, body); err != nil {
			return fmt.Errorf("save alert %s: %w", a.ID, err)
		}
	}
	return tx.Commit(ctx)
}

// GetAlert reads one alert by id.
func (s *Store) GetAlert(ctx context.Context, id string) (store.AlertDetail, error) {
	var a store.AlertDetail
	var body []byte
	if err := s.pool.QueryRow(ctx, `SELECT body FROM alerts WHERE id = $1`, id).Scan(&body); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return a, store.ErrNotFound
		}
		return a, fmt.Errorf("get alert %s: %w", id, err)
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return a, fmt.Errorf("decode alert %s: %w", id, err)
	}
	return a, nil
}

func collectJSON[T any](rows pgx.Rows, what string) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return nil, err
		}
		var v T
		if err := json.Unmarshal(body, &v); err != nil {
			return nil, fmt.Errorf("decode %s: %w", what, err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// OpenAlerts returns every firing or acknowledged alert, oldest first.
func (s *Store) OpenAlerts(ctx context.Context) ([]store.AlertDetail, error) {
	rows, err := s.pool.Query(ctx, `SELECT body FROM alerts WHERE state IN ('firing', 'acknowledged') ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("open alerts: %w", err)
	}
	return collectJSON[store.AlertDetail](rows, "alert")
}

// ClosedCounts counts resolved and false-positive alerts per fingerprint.
func (s *Store) ClosedCounts(ctx context.Context, fps []string) (map[string]int, error) {
	out := make(map[string]int, len(fps))
	if len(fps) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT fingerprint, count(*) FROM alerts WHERE state IN ('resolved', 'false_positive') AND fingerprint = ANY($1) GROUP BY fingerprint`, fps)
	if err != nil {
		return nil, fmt.Errorf("count closed alerts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var fp string
		var c int
		if err := rows.Scan(&fp, &c); err != nil {
			return nil, err
		}
		out[fp] = c
	}
	return out, rows.Err()
}

// RuleFeedback counts alerts and false positives per rule.
func (s *Store) RuleFeedback(ctx context.Context) ([]store.RuleFeedback, error) {
	rows, err := s.pool.Query(ctx, `SELECT rule, count(*), count(*) FILTER (WHERE state = 'false_positive') FROM alerts GROUP BY rule ORDER BY rule`)
	if err != nil {
		return nil, fmt.Errorf("rule feedback: %w", err)
	}
	defer rows.Close()
	out := []store.RuleFeedback{}
	for rows.Next() {
		var f store.RuleFeedback
		if err := rows.Scan(&f.Rule, &f.Alerts, &f.FalsePositives); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// PutSilence creates or replaces a silence.
func (s *Store) PutSilence(ctx context.Context, sl store.Silence) error {
	if sl.ID == "" {
		return errors.New("put silence: id is required")
	}
	body, err := json.Marshal(sl)
	if err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO silences (id, created_at, ends_at, body) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET ends_at = excluded.ends_at, body = excluded.body`, sl.ID, nanos(sl.CreatedAt), nanos(sl.EndsAt), body); err != nil {
		return fmt.Errorf("put silence %s: %w", sl.ID, err)
	}
	return nil
}

// ListSilences returns silences that end after since, by creation time.
func (s *Store) ListSilences(ctx context.Context, since time.Time) ([]store.Silence, error) {
	rows, err := s.pool.Query(ctx, `SELECT body FROM silences WHERE ends_at > $1 ORDER BY created_at, id`, nanos(since))
	if err != nil {
		return nil, fmt.Errorf("list silences: %w", err)
	}
	return collectJSON[store.Silence](rows, "silence")
}

// RecordFlush saves group states and enqueues notifications atomically.
func (s *Store) RecordFlush(ctx context.Context, gs []store.GroupState, ns []store.Notification) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	for _, g := range gs {
		if g.Deleted {
			if _, err := tx.Exec(ctx, `DELETE FROM alert_groups WHERE key = $1`, g.Key); err != nil {
				return fmt.Errorf("delete group %s: %w", g.Key, err)
			}
			continue
		}
		body, err := json.Marshal(g)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO alert_groups (key, body) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET body = excluded.body`, g.Key, body); err != nil {
			return fmt.Errorf("save group %s: %w", g.Key, err)
		}
	}
	for _, n := range ns {
		if n.State == "" {
			n.State = store.NotificationPending
		}
		if _, err := tx.Exec(ctx, `INSERT INTO outbox (key, receiver, group_key, state, attempts, next_at, created_at, payload) VALUES ($1, $2, $3, $4, 0, $5, $6, $7)
			ON CONFLICT (key) DO NOTHING`, n.Key, n.Receiver, n.GroupKey, n.State, nanos(n.NextAt), nanos(n.CreatedAt), []byte(n.Payload)); err != nil {
			return fmt.Errorf("enqueue notification %s: %w", n.Key, err)
		}
	}
	return tx.Commit(ctx)
}

// ListGroups returns every stored notification group.
func (s *Store) ListGroups(ctx context.Context) ([]store.GroupState, error) {
	rows, err := s.pool.Query(ctx, `SELECT body FROM alert_groups ORDER BY key`)
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	return collectJSON[store.GroupState](rows, "group")
}

// ClaimNotifications leases due pending notifications; SKIP LOCKED lets several instances
// deliver from one outbox without claiming the same row.
func (s *Store) ClaimNotifications(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.Notification, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.pool.Query(ctx, `UPDATE outbox SET next_at = $1, attempts = attempts + 1
		WHERE seq IN (SELECT seq FROM outbox WHERE state = 'pending' AND next_at <= $2 ORDER BY next_at, seq LIMIT $3 FOR UPDATE SKIP LOCKED)
		RETURNING key, receiver, group_key, state, attempts, next_at, created_at, last_error, payload, seq`,
		nanos(now.Add(lease)), nanos(now), limit)
	if err != nil {
		return nil, fmt.Errorf("claim notifications: %w", err)
	}
	defer rows.Close()
	type row struct {
		n   store.Notification
		seq int64
	}
	var got []row
	for rows.Next() {
		var r row
		var next, created int64
		var payload []byte
		if err := rows.Scan(&r.n.Key, &r.n.Receiver, &r.n.GroupKey, &r.n.State, &r.n.Attempts, &next, &created, &r.n.LastError, &payload, &r.seq); err != nil {
			return nil, err
		}
		r.n.NextAt, r.n.CreatedAt, r.n.Payload = fromNanos(next), fromNanos(created), payload
		got = append(got, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sort.Slice(got, func(i, j int) bool { return got[i].seq < got[j].seq })
	out := make([]store.Notification, len(got))
	for i := range got {
		out[i] = got[i].n
	}
	return out, nil
}

// FinishNotification records a delivery attempt's outcome.
func (s *Store) FinishNotification(ctx context.Context, key string, r store.DeliveryResult) error {
	at := r.At
	if at.IsZero() {
		at = s.now()
	}
	var n int64
	var err error
	switch {
	case r.Delivered:
		tag, e := s.pool.Exec(ctx, `UPDATE outbox SET state = 'delivered', done_at = $1, last_error = '' WHERE key = $2 AND state = 'pending'`, nanos(at), key)
		n, err = tag.RowsAffected(), e
	case !r.RetryAt.IsZero():
		tag, e := s.pool.Exec(ctx, `UPDATE outbox SET next_at = $1, last_error = $2 WHERE key = $3 AND state = 'pending'`, nanos(r.RetryAt), r.Error, key)
		n, err = tag.RowsAffected(), e
	default:
		tag, e := s.pool.Exec(ctx, `UPDATE outbox SET state = 'failed', done_at = $1, last_error = $2 WHERE key = $3 AND state = 'pending'`, nanos(at), r.Error, key)
		n, err = tag.RowsAffected(), e
	}
	if err != nil {
		return fmt.Errorf("finish notification %s: %w", key, err)
	}
	if n == 0 {
		return fmt.Errorf("finish notification %s: %w", key, store.ErrNotFound)
	}
	return nil
}

// NotificationStats counts outbox entries by state.
func (s *Store) NotificationStats(ctx context.Context) (map[string]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT state, count(*) FROM outbox GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("notification stats: %w", err)
	}
	defer rows.Close()
	out := map[string]int{store.NotificationPending: 0, store.NotificationDelivered: 0, store.NotificationFailed: 0}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[st] = n
	}
	return out, rows.Err()
}

// CreateAction inserts an action unless its key exists.
func (s *Store) CreateAction(ctx context.Context, a store.Action) (store.Action, bool, error) {
	if a.ID == "" || a.Key == "" {
		return a, false, errors.New("create action: id and key are required")
	}
	body, err := json.Marshal(a)
	if err != nil {
		return a, false, err
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO actions (id, key, alert_id, status, body) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key) DO NOTHING`,
		a.ID, a.Key, a.AlertID, a.Status, body)
	if err != nil {
		return a, false, fmt.Errorf("create action %s: %w", a.Key, err)
	}
	if tag.RowsAffected() == 1 {
		return a, true, nil
	}
	var existing []byte
	if err := s.pool.QueryRow(ctx, `SELECT body FROM actions WHERE key = $1`, a.Key).Scan(&existing); err != nil {
		return a, false, fmt.Errorf("read action %s: %w", a.Key, err)
	}
	var got store.Action
	if err := json.Unmarshal(existing, &got); err != nil {
		return a, false, err
	}
	return got, false, nil
}

// SaveAction replaces an action by id.
func (s *Store) SaveAction(ctx context.Context, a store.Action) error {
	body, err := json.Marshal(a)
	if err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `UPDATE actions SET status = $1, body = $2 WHERE id = $3`, a.Status, body, a.ID)
	if err != nil {
		return fmt.Errorf("save action %s: %w", a.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("save action %s: %w", a.ID, store.ErrNotFound)
	}
	return nil
}

// GetAction reads an action by id.
func (s *Store) GetAction(ctx context.Context, id string) (store.Action, error) {
	var a store.Action
	var body []byte
	if err := s.pool.QueryRow(ctx, `SELECT body FROM actions WHERE id = $1`, id).Scan(&body); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return a, store.ErrNotFound
		}
		return a, fmt.Errorf("get action %s: %w", id, err)
	}
	return a, json.Unmarshal(body, &a)
}

// ListActions returns actions in a status, oldest first.
func (s *Store) ListActions(ctx context.Context, status string) ([]store.Action, error) {
	var rows pgx.Rows
	var err error
	if status == "" {
		rows, err = s.pool.Query(ctx, `SELECT body FROM actions ORDER BY seq LIMIT 1000`)
	} else {
		rows, err = s.pool.Query(ctx, `SELECT body FROM actions WHERE status = $1 ORDER BY seq LIMIT 1000`, status)
	}
	if err != nil {
		return nil, fmt.Errorf("list actions: %w", err)
	}
	return collectJSON[store.Action](rows, "action")
}
