package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipewarden/pipewarden/internal/store"
)

// Notifier sends one message to one receiver. key is the notification's idempotency key: a
// receiver that can deduplicate should, because a notification whose delivery was not recorded
// (a crash right after sending) is sent again with the same key.
type Notifier interface {
	Notify(ctx context.Context, key string, m *Message) error
}

// Outbox is the part of the store the dispatcher drains.
type Outbox interface {
	ClaimNotifications(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.Notification, error)
	FinishNotification(ctx context.Context, key string, r store.DeliveryResult) error
}

// Options tune a Dispatcher.
type Options struct {
	// MaxAttempts before a notification is marked failed (default 12).
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the exponential retry delay (defaults 1s and 5m).
	MinBackoff, MaxBackoff time.Duration
	// Lease is how long a claimed notification is held before a crash makes it due again
	// (default 1m); it also bounds one delivery attempt.
	Lease time.Duration
	// Batch is how many notifications one pass claims (default 100).
	Batch      int
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// OnResult, when set, is told the outcome of every attempt ("delivered", "retry",
	// "failed"); the alerting pipeline audits it.
	OnResult func(ctx context.Context, n store.Notification, outcome string, err error)
}

// Dispatcher delivers the outbox's due notifications to their receivers.
type Dispatcher struct {
	out       Outbox
	receivers map[string]Notifier
	o         Options
	log       *slog.Logger
	sent      *prometheus.CounterVec
}

// NewDispatcher returns a dispatcher for the named receivers.
func NewDispatcher(out Outbox, receivers map[string]Notifier, o Options) *Dispatcher {
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 12
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Minute
	}
	if o.Lease <= 0 {
		o.Lease = time.Minute
	}
	if o.Batch <= 0 {
		o.Batch = 100
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Dispatcher{out: out, receivers: receivers, o: o, log: o.Logger}
	d.sent = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pipewarden_notifications_total", Help: "Notification delivery attempts by receiver and outcome (delivered, retry, failed)."},
		[]string{"receiver", "outcome"})
	if o.Registerer != nil {
		o.Registerer.MustRegister(d.sent)
	}
	return d
}

// Backoff is the delay before attempt number attempts+1.
func (d *Dispatcher) Backoff(attempts int) time.Duration {
	b := d.o.MinBackoff
	for i := 1; i < attempts && b < d.o.MaxBackoff; i++ {
		b *= 2
	}
	return min(b, d.o.MaxBackoff)
}

// Deliver makes one pass: it claims due notifications, sends each and records the outcome. It
// returns how many were delivered.
func (d *Dispatcher) Deliver(ctx context.Context) (int, error) {
	ns, err := d.out.ClaimNotifications(ctx, d.o.Now(), d.o.Lease, d.o.Batch)
	if err != nil {
		return 0, err
	}
	delivered := 0
	for _, n := range ns {
		err := d.send(ctx, n)
		now := d.o.Now()
		res := store.DeliveryResult{At: now, Delivered: err == nil}
		outcome := "delivered"
		if err != nil {
			res.Error = err.Error()
			if !IsPermanent(err) && n.Attempts < d.o.MaxAttempts {
				res.RetryAt = now.Add(d.Backoff(n.Attempts))
				outcome = "retry"
			} else {
				outcome = "failed"
				d.log.Error("notification failed for good", "receiver", n.Receiver, "key", n.Key, "attempts", n.Attempts, "err", err)
			}
		} else {
			delivered++
		}
		d.sent.WithLabelValues(n.Receiver, outcome).Inc()
		if ferr := d.out.FinishNotification(ctx, n.Key, res); ferr != nil {
			return delivered, fmt.Errorf("record delivery of %s: %w", n.Key, ferr)
		}
		if d.o.OnResult != nil {
			d.o.OnResult(ctx, n, outcome, err)
		}
	}
	return delivered, nil
}

func (d *Dispatcher) send(ctx context.Context, n store.Notification) error {
	r, ok := d.receivers[n.Receiver]
	if !ok {
		return Permanent(fmt.Errorf("receiver %q is not configured", n.Receiver))
	}
	var m Message
	if err := json.Unmarshal(n.Payload, &m); err != nil {
		return Permanent(fmt.Errorf("decode notification %s: %w", n.Key, err))
	}
	ctx, cancel := context.WithTimeout(ctx, d.o.Lease)
	defer cancel()
	return r.Notify(ctx, n.Key, &m)
}
