package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/pipewarden/pipewarden/internal/store"
)

// SaveAlerts inserts or replaces alerts by id in one transaction.
func (s *Store) SaveAlerts(ctx context.Context, as []store.AlertDetail) error {
	if len(as) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `INSERT INTO alerts (id, fingerprint, state, priority, last_seen, rule, body) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET fingerprint = excluded.fingerprint, state = excluded.state, priority = excluded.priority,
		last_seen = excluded.last_seen, rule = excluded.rule, body = excluded.body`)
	if err != nil {
		return fmt.Errorf("save alerts: %w", err)
	}
	defer st.Close()
	for i := range as {
		a := &as[i]
		if a.ID == "" {
			return fmt.Errorf("save alert %s: id is required", a.Fingerprint)
		}
		body, err := json.Marshal(a)
		if err != nil {
			return fmt.Errorf("encode alert %s: %w", a.ID, err)
		}
		if _, err := st.ExecContext(ctx, a.ID, a.Fingerprint, a.State, a.Priority, nanos(a.LastSeen), a.Rule, body); err != nil {
			return fmt.Errorf("save alert %s: %w", a.ID, err)
		}
	}
	return tx.Commit()
}

// GetAlert reads one alert by id.
func (s *Store) GetAlert(ctx context.Context, id string) (store.AlertDetail, error) {
	var a store.AlertDetail
	var body []byte
	err := s.r.QueryRowContext(ctx, `SELECT body FROM alerts WHERE id = ?`, id).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return a, store.ErrNotFound
	}
	if err != nil {
		return a, fmt.Errorf("get alert %s: %w", id, err)
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return a, fmt.Errorf("decode alert %s: %w", id, err)
	}
	return a, nil
}

// OpenAlerts returns every firing or acknowledged alert, oldest first.
func (s *Store) OpenAlerts(ctx context.Context) ([]store.AlertDetail, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT body FROM alerts WHERE state IN ('firing', 'acknowledged') ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("open alerts: %w", err)
	}
	defer rows.Close()
	out := []store.AlertDetail{}
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return nil, err
		}
		var a store.AlertDetail
		if err := json.Unmarshal(body, &a); err != nil {
			return nil, fmt.Errorf("decode alert: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// ClosedCounts counts resolved and false-positive alerts per fingerprint.
func (s *Store) ClosedCounts(ctx context.Context, fps []string) (map[string]int, error) {
	out := make(map[string]int, len(fps))
	for len(fps) > 0 {
		n := min(len(fps), 500)
		chunk := fps[:n]
		fps = fps[n:]
		args := make([]any, len(chunk))
		for i, f := range chunk {
			args[i] = f
		}
		rows, err := s.r.QueryContext(ctx, `SELECT fingerprint, count(*) FROM alerts WHERE state IN ('resolved', 'false_positive') AND fingerprint IN (`+
			strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",")+`) GROUP BY fingerprint`, args...)
		if err != nil {
			return nil, fmt.Errorf("count closed alerts: %w", err)
		}
		for rows.Next() {
			var fp string
			var c int
			if err := rows.Scan(&fp, &c); err != nil {
				rows.Close()
				return nil, err
			}
			out[fp] = c
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// RuleFeedback counts alerts and false positives per rule.
func (s *Store) RuleFeedback(ctx context.Context) ([]store.RuleFeedback, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT rule, count(*), sum(state = 'false_positive') FROM alerts GROUP BY rule ORDER BY rule`)
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
	_, err = s.w.ExecContext(ctx, `INSERT INTO silences (id, created_at, ends_at, body) VALUES (?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET ends_at = excluded.ends_at, body = excluded.body`, sl.ID, nanos(sl.CreatedAt), nanos(sl.EndsAt), body)
	if err != nil {
		return fmt.Errorf("put silence %s: %w", sl.ID, err)
	}
	return nil
}

// ListSilences returns silences that end after since, by creation time.
func (s *Store) ListSilences(ctx context.Context, since time.Time) ([]store.Silence, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT body FROM silences WHERE ends_at > ? ORDER BY created_at, id`, nanos(since))
	if err != nil {
		return nil, fmt.Errorf("list silences: %w", err)
	}
	defer rows.Close()
	out := []store.Silence{}
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return nil, err
		}
		var sl store.Silence
		if err := json.Unmarshal(body, &sl); err != nil {
			return nil, fmt.Errorf("decode silence: %w", err)
		}
		out = append(out, sl)
	}
	return out, rows.Err()
}

// RecordFlush saves group states and enqueues notifications atomically.
func (s *Store) RecordFlush(ctx context.Context, gs []store.GroupState, ns []store.Notification) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, g := range gs {
		if g.Deleted {
			if _, err := tx.ExecContext(ctx, `DELETE FROM alert_groups WHERE key = ?`, g.Key); err != nil {
				return fmt.Errorf("delete group %s: %w", g.Key, err)
			}
			continue
		}
		body, err := json.Marshal(g)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO alert_groups (key, body) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET body = excluded.body`, g.Key, body); err != nil {
			return fmt.Errorf("save group %s: %w", g.Key, err)
		}
	}
	for _, n := range ns {
		if n.State == "" {
			n.State = store.NotificationPending
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO outbox (key, receiver, group_key, state, attempts, next_at, created_at, payload) VALUES (?, ?, ?, ?, 0, ?, ?, ?)
			ON CONFLICT (key) DO NOTHING`, n.Key, n.Receiver, n.GroupKey, n.State, nanos(n.NextAt), nanos(n.CreatedAt), []byte(n.Payload)); err != nil {
			return fmt.Errorf("enqueue notification %s: %w", n.Key, err)
		}
	}
	return tx.Commit()
}

// ListGroups returns every stored notification group.
func (s *Store) ListGroups(ctx context.Context) ([]store.GroupState, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT body FROM alert_groups ORDER BY key`)
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	defer rows.Close()
	out := []store.GroupState{}
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return nil, err
		}
		var g store.GroupState
		if err := json.Unmarshal(body, &g); err != nil {
			return nil, fmt.Errorf("decode group: %w", err)
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// ClaimNotifications leases due pending notifications.
func (s *Store) ClaimNotifications(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.Notification, error) {
	if limit <= 0 {
		limit = 100
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `UPDATE outbox SET next_at = ?, attempts = attempts + 1
		WHERE seq IN (SELECT seq FROM outbox WHERE state = 'pending' AND next_at <= ? ORDER BY next_at, seq LIMIT ?)
		RETURNING key, receiver, group_key, state, attempts, next_at, created_at, last_error, payload, seq`,
		nanos(now.Add(lease)), nanos(now), limit)
	if err != nil {
		return nil, fmt.Errorf("claim notifications: %w", err)
	}
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
			rows.Close()
			return nil, err
		}
		r.n.NextAt, r.n.CreatedAt, r.n.Payload = fromNanos(next), fromNanos(created), payload
		got = append(got, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	// RETURNING gives no order guarantee; deliver in enqueue order.
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
	var res sql.Result
	var err error
	switch {
	case r.Delivered:
		res, err = s.w.ExecContext(ctx, `UPDATE outbox SET state = 'delivered', done_at = ?, last_error = '' WHERE key = ? AND state = 'pending'`, nanos(at), key)
	case !r.RetryAt.IsZero():
		res, err = s.w.ExecContext(ctx, `UPDATE outbox SET next_at = ?, last_error = ? WHERE key = ? AND state = 'pending'`, nanos(r.RetryAt), r.Error, key)
	default:
		res, err = s.w.ExecContext(ctx, `UPDATE outbox SET state = 'failed', done_at = ?, last_error = ? WHERE key = ? AND state = 'pending'`, nanos(at), r.Error, key)
	}
	if err != nil {
		return fmt.Errorf("finish notification %s: %w", key, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("finish notification %s: %w", key, store.ErrNotFound)
	}
	return nil
}

// NotificationStats counts outbox entries by state.
func (s *Store) NotificationStats(ctx context.Context) (map[string]int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT state, count(*) FROM outbox GROUP BY state`)
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
	res, err := s.w.ExecContext(ctx, `INSERT INTO actions (id, key, alert_id, status, body) VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING`,
		a.ID, a.Key, a.AlertID, a.Status, body)
	if err != nil {
		return a, false, fmt.Errorf("create action %s: %w", a.Key, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return a, true, nil
	}
	var existing []byte
	if err := s.w.QueryRowContext(ctx, `SELECT body FROM actions WHERE key = ?`, a.Key).Scan(&existing); err != nil {
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
	res, err := s.w.ExecContext(ctx, `UPDATE actions SET status = ?, body = ? WHERE id = ?`, a.Status, body, a.ID)
	if err != nil {
		return fmt.Errorf("save action %s: %w", a.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("save action %s: %w", a.ID, store.ErrNotFound)
	}
	return nil
}

// GetAction reads an action by id.
func (s *Store) GetAction(ctx context.Context, id string) (store.Action, error) {
	var a store.Action
	var body []byte
	err := s.r.QueryRowContext(ctx, `SELECT body FROM actions WHERE id = ?`, id).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return a, store.ErrNotFound
	}
	if err != nil {
		return a, fmt.Errorf("get action %s: %w", id, err)
	}
	return a, json.Unmarshal(body, &a)
}

// ListActions returns actions in a status, oldest first.
func (s *Store) ListActions(ctx context.Context, status string) ([]store.Action, error) {
	where, args := "1=1", []any{}
	if status != "" {
		where, args = "status = ?", append(args, status)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT body FROM actions WHERE `+where+` ORDER BY seq LIMIT 1000`, args...)
	if err != nil {
		return nil, fmt.Errorf("list actions: %w", err)
	}
	defer rows.Close()
	out := []store.Action{}
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return nil, err
		}
		var a store.Action
		if err := json.Unmarshal(body, &a); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
