package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/notify"
	"github.com/pipewarden/pipewarden/internal/store"
	"github.com/pipewarden/pipewarden/internal/store/sqlite"
)

type flaky struct {
	errs []error
	keys []string
}

func (f *flaky) Notify(ctx context.Context, key string, m *notify.Message) error {
	f.keys = append(f.keys, key)
	if len(f.errs) > 0 {
		e := f.errs[0]
		f.errs = f.errs[1:]
		return e
	}
	return nil
}

func TestDispatcherRetriesWithBackoffThenGivesUp(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "pw.db"), sqlite.Options{Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	payload, _ := json.Marshal(notify.Message{Version: "4"})
	ctx := context.Background()
	enqueue := func(key, recv string) {
		if err := st.RecordFlush(ctx, nil, []store.Notification{{Key: key, Receiver: recv, GroupKey: "g", Payload: payload, NextAt: now, CreatedAt: now}}); err != nil {
			t.Fatal(err)
		}
	}
	down := errors.New("connection refused")
	r := &flaky{errs: []error{down, down, down}}
	perm := &flaky{errs: []error{notify.Permanent(errors.New("400"))}}
	d := notify.NewDispatcher(st, map[string]notify.Notifier{"r": r, "perm": perm}, notify.Options{
		MaxAttempts: 5, MinBackoff: time.Second, MaxBackoff: 3 * time.Second, Now: func() time.Time { return now }})
	enqueue("a", "r")
	enqueue("b", "perm")
	enqueue("c", "missing")
	var delivered int
	var times []time.Duration
	start := now
	for i := 0; i < 20; i++ {
		n, err := d.Deliver(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			times = append(times, now.Sub(start))
		}
		delivered += n
		now = now.Add(500 * time.Millisecond)
	}
	if delivered != 1 || len(r.keys) != 4 || r.keys[3] != "a" {
		t.Fatalf("delivered %d after attempts %v", delivered, r.keys)
	}
	// Backoff 1s, 2s, 3s (capped): the fourth attempt is at 6s.
	if times[0] != 6*time.Second {
		t.Errorf("delivered at %v, want 6s after three failures with backoff", times[0])
	}
	if len(perm.keys) != 1 {
		t.Errorf("a permanent error must not be retried: %d attempts", len(perm.keys))
	}
	s, _ := st.NotificationStats(ctx)
	if s["delivered"] != 1 || s["failed"] != 2 {
		t.Errorf("stats = %v (the unknown receiver and the permanent error fail)", s)
	}
}
