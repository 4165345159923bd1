// Package bus is the in-process publish/subscribe bus between ingestion and the consumers of
// events and findings (rules, detectors, alerting). Queues are bounded: a publisher reserves room
// in every subscriber's queue first, so a consumer that falls behind turns into backpressure at
// the API instead of lost messages.
package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ErrFull is returned by Reserve when a subscriber's queue has no room; callers should ask the
// client to retry later.
var ErrFull = errors.New("bus: a consumer is behind, queue full")

// ErrClosed is returned after Close.
var ErrClosed = errors.New("bus: closed")

// Handler consumes one published batch. It runs on the subscriber's own goroutine.
type Handler[T any] func(ctx context.Context, msgs []T)

// Options configure a bus.
type Options struct {
	// Name labels the bus's metrics ("events", "findings").
	Name string
	// QueueSize bounds each subscriber's queue, counted in messages (default 100,000).
	QueueSize int
	// Registerer receives the metrics; nil registers nothing.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// ReuseBatches lets each subscriber's goroutine reuse the slice it merges waiting
	// publishes into, instead of allocating one per call: set it only when every handler is
	// done with the slice it is given (and with pointers into it) when it returns.
	ReuseBatches bool
}

// Bus fans batches out to every subscriber.
type Bus[T any] struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	subs    []*sub[T]
	started bool
	closed  bool
	closing chan struct{} // closed by Close: gathering subscribers stop waiting
	wg      sync.WaitGroup

	refused   *prometheus.CounterVec
	published prometheus.Counter
	panics    *prometheus.CounterVec
}

type sub[T any] struct {
	name    string
	h       Handler[T]
	ch      chan []T
	every   time.Duration // Gather's interval; 0 hands over what is waiting at once
	pending int           // messages reserved or queued, not yet handled; guarded by Bus.mu
}

// SubscribeOption tunes one subscriber.
type SubscribeOption func(*subOptions)

type subOptions struct{ every time.Duration }

// Gather makes the subscriber's handler run at most once per d while it keeps up: publishes
// that arrive meanwhile wait in its queue and are handed over together (up to the coalescing
// cap), so a handler with a fixed cost per call (an fsync) pays it once per d. A subscriber
// that is behind (its last call got a full batch) is not held back, and Close stops the wait.
func Gather(d time.Duration) SubscribeOption {
	return func(o *subOptions) { o.every = d }
}

// New returns a bus; subscribe, then Start.
func New[T any](o Options) *Bus[T] {
	if o.QueueSize <= 0 {
		o.QueueSize = 100000
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	b := &Bus[T]{opts: o, log: o.Logger, closing: make(chan struct{})}
	b.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pipewarden_bus_refused_total", Help: "Publishes refused because a subscriber queue was full (backpressure).",
		ConstLabels: prometheus.Labels{"bus": o.Name}}, []string{"subscriber"})
	b.published = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "pipewarden_bus_published_total", Help: "Messages published.", ConstLabels: prometheus.Labels{"bus": o.Name}})
	b.panics = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pipewarden_bus_handler_panics_total", Help: "Subscriber handler panics (recovered).",
		ConstLabels: prometheus.Labels{"bus": o.Name}}, []string{"subscriber"})
	if o.Registerer != nil {
		o.Registerer.MustRegister(b.refused, b.published, b.panics)
	}
	return b
}

// Subscribe adds a consumer; it must be called before Start.
func (b *Bus[T]) Subscribe(name string, h Handler[T], opts ...SubscribeOption) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started {
		panic("bus: Subscribe after Start")
	}
	var o subOptions
	for _, opt := range opts {
		opt(&o)
	}
	s := &sub[T]{name: name, h: h, ch: make(chan []T, b.opts.QueueSize), every: o.every}
	b.subs = append(b.subs, s)
	if b.opts.Registerer != nil {
		b.opts.Registerer.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "pipewarden_bus_queue_depth", Help: "Messages queued or reserved for a subscriber.",
			ConstLabels: prometheus.Labels{"bus": b.opts.Name, "subscriber": name}},
			func() float64 { b.mu.Lock(); defer b.mu.Unlock(); return float64(s.pending) }))
	}
	b.refused.WithLabelValues(name)
}

// Start runs one goroutine per subscriber until Close.
func (b *Bus[T]) Start(ctx context.Context) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started {
		return
	}
	b.started = true
	for _, s := range b.subs {
		b.wg.Add(1)
		go b.consume(ctx, s)
	}
}

func (b *Bus[T]) consume(ctx context.Context, s *sub[T]) {
	defer b.wg.Done()
	var parts [][]T
	var scratch *[]T
	if b.opts.ReuseBatches {
		scratch = new([]T)
	}
	var last time.Time // when the previous call of a gathering subscriber started; zero if it was behind
	for msgs := range s.ch {
		if s.every > 0 {
			b.gatherWait(ctx, last, s.every)
			last = time.Now()
		}
		parts = append(parts[:0], msgs)
		msgs = coalesce(s.ch, msgs, &parts, scratch)
		if !b.handle(ctx, s, msgs, len(parts) == 1) && len(parts) > 1 {
			// The handler panicked on a coalesced batch: hand it each publish on its own, so
			// only the one it cannot take is lost, as without coalescing.
			for _, p := range parts {
				b.handle(ctx, s, p, true)
			}
		}
		if len(parts) > 1 && scratch != nil {
			// The merged slice goes back for the next call, emptied so that it keeps no
			// message alive; an outsized one (a huge publish) is let go.
			clear(msgs)
			if cap(msgs) <= 4*maxCoalesce {
				*scratch = msgs[:0]
			}
		}
		clear(parts) // the publishers' slices
		if len(msgs) >= maxCoalesce {
			last = time.Time{} // behind: the next call does not wait
		}
		b.mu.Lock()
		s.pending -= len(msgs)
		b.mu.Unlock()
	}
}

// gatherWait waits until every has passed since last, unless last is zero or the bus is
// closing (Close drains at once) or ctx ends.
func (b *Bus[T]) gatherWait(ctx context.Context, last time.Time, every time.Duration) {
	if last.IsZero() {
		return
	}
	wait := every - time.Since(last)
	if wait <= 0 {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-b.closing:
	case <-ctx.Done():
	}
}

// maxCoalesce caps how many messages one handler call receives when several publishes are
// waiting.
const maxCoalesce = 4096

// coalesce appends the publishes already waiting in ch to first (up to maxCoalesce messages),
// so a subscriber that fell behind catches up in few calls: one audit fsync, one store
// transaction for many small publishes. Publishers' slices are shared by every subscriber and
// are never written: a coalesced batch is a new slice, or scratch's when given.
func coalesce[T any](ch chan []T, first []T, parts *[][]T, scratch *[]T) []T {
	out, copied := first, false
	for len(out) < maxCoalesce {
		select {
		case more, ok := <-ch:
			if !ok {
				return out
			}
			if !copied {
				if scratch != nil && *scratch != nil {
					out = append((*scratch)[:0], first...)
					*scratch = nil // lent out until the handler returns
				} else {
					out = append(make([]T, 0, max(2*(len(first)+len(more)), 64)), first...)
				}
				copied = true
			}
			out = append(out, more...)
			*parts = append(*parts, more)
		default:
			return out
		}
	}
	return out
}

// handle runs the subscriber's handler; false if it panicked. A panic is counted and logged
// if report is set (a coalesced batch is retried part by part, and its parts are reported).
func (b *Bus[T]) handle(ctx context.Context, s *sub[T], msgs []T, report bool) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			ok = false
			if !report {
				return
			}
			b.panics.WithLabelValues(s.name).Inc()
			b.log.Error("bus subscriber panicked", "bus", b.opts.Name, "subscriber", s.name, "panic", fmt.Sprint(r))
		}
	}()
	s.h(ctx, msgs)
	return true
}

// Reservation is room for n messages in every subscriber's queue.
type Reservation[T any] struct {
	b    *Bus[T]
	n    int
	done bool
}

// Reserve takes room for n messages in every queue, or returns ErrFull (counting the refusal
// against each full subscriber) without taking any.
func (b *Bus[T]) Reserve(n int) (*Reservation[T], error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	if b.refuseLocked(n) {
		return nil, ErrFull
	}
	for _, s := range b.subs {
		s.pending += n
	}
	return &Reservation[T]{b: b, n: n}, nil
}

// refuseLocked reports whether some subscriber has no room for n more messages, counting a
// refusal against each such one. A batch larger than a whole queue is admitted into an empty
// queue, never refused forever.
func (b *Bus[T]) refuseLocked(n int) bool {
	full := false
	for _, s := range b.subs {
		if s.pending > 0 && s.pending+n > b.opts.QueueSize {
			b.refused.WithLabelValues(s.name).Inc()
			full = true
		}
	}
	return full
}

// CheckRoom returns ErrFull (counting the refusal against each full subscriber) when some
// subscriber's queue is full, so that no Reserve could succeed: a publisher can refuse work
// before preparing it (ingestion answers 429 before reading and decoding a request's body).
func (b *Bus[T]) CheckRoom() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	if b.refuseLocked(1) {
		return ErrFull
	}
	return nil
}

// Publish delivers msgs (at most the reserved count) to every subscriber; it never blocks on a
// slow consumer because the room was reserved.
func (r *Reservation[T]) Publish(msgs []T) {
	if r.done {
		return
	}
	r.done = true
	b := r.b
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.subs {
		s.pending -= r.n - len(msgs) // give back what was reserved but not sent
		if len(msgs) > 0 {
			s.ch <- msgs
		}
	}
	b.published.Add(float64(len(msgs)))
}

// Cancel gives the room back, e.g. when storing the messages failed.
func (r *Reservation[T]) Cancel() {
	if r.done {
		return
	}
	r.done = true
	r.b.mu.Lock()
	defer r.b.mu.Unlock()
	for _, s := range r.b.subs {
		s.pending -= r.n
	}
}

// Depth returns each subscriber's pending count.
func (b *Bus[T]) Depth() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]int, len(b.subs))
	for _, s := range b.subs {
		out[s.name] = s.pending
	}
	return out
}

// Close stops new reservations and waits until every queued message is handled or ctx ends.
func (b *Bus[T]) Close(ctx context.Context) error {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.closing)
		for _, s := range b.subs {
			close(s.ch)
		}
	}
	b.mu.Unlock()
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("bus %s: drain: %w", b.opts.Name, ctx.Err())
	}
}
