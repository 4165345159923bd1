package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipewarden/pipewarden/internal/bus"
	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/httpapi"
	"github.com/pipewarden/pipewarden/internal/store"
)

type ingestMetrics struct {
	stored     prometheus.Counter
	duplicates prometheus.Counter
	batch      prometheus.Histogram
	commit     prometheus.Histogram
	commitErrs prometheus.Counter
	storedType *prometheus.CounterVec
}

func newIngestMetrics(reg prometheus.Registerer) *ingestMetrics {
	m := &ingestMetrics{
		stored:     prometheus.NewCounter(prometheus.CounterOpts{Name: "pipewarden_events_stored_total", Help: "Events committed to the store (new ids)."}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "pipewarden_events_duplicate_total", Help: "Events whose id was already stored (idempotent retries)."}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "pipewarden_store_batch_events", Help: "Events per store commit.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8)}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "pipewarden_store_commit_seconds", Help: "Store commit latency.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}}),
		commitErrs: prometheus.NewCounter(prometheus.CounterOpts{Name: "pipewarden_store_commit_errors_total", Help: "Failed store commits."}),
		storedType: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pipewarden_events_stored_by_type_total", Help: "Events acknowledged after commit, by type."}, []string{"type"}),
	}
	reg.MustRegister(m.stored, m.duplicates, m.batch, m.commit, m.commitErrs, m.storedType)
	return m
}

func (m *ingestMetrics) observeCommit(n, inserted int, took time.Duration, err error) {
	m.batch.Observe(float64(n))
	m.commit.Observe(took.Seconds())
	if err != nil {
		m.commitErrs.Inc()
		return
	}
	m.stored.Add(float64(inserted))
	m.duplicates.Add(float64(n - inserted))
}

// ingester stores events through the group-commit writer and then hands them to the bus. Room on
// the bus is reserved first, so a consumer that is behind refuses the request (429) before
// anything is stored, and nothing stored is ever dropped on the way to consumers.
type ingester struct {
	w   *store.Writer
	bus *bus.Bus[event.Event]
	m   *ingestMetrics
}

// CheckRoom tells the API, before it reads a body, that every reservation would be refused.
func (in *ingester) CheckRoom() error {
	if errors.Is(in.bus.CheckRoom(), bus.ErrFull) {
		return httpapi.ErrBackpressure
	}
	return nil
}

func (in *ingester) Ingest(ctx context.Context, evs []event.Event) error {
	res, err := in.bus.Reserve(len(evs))
	if errors.Is(err, bus.ErrFull) {
		return httpapi.ErrBackpressure
	}
	if err != nil {
		return fmt.Errorf("reserve: %w", err)
	}
	if err := in.w.Append(ctx, evs); err != nil {
		res.Cancel()
		return err
	}
	event.CountByType(evs, func(typ string, n int) { in.m.storedType.WithLabelValues(typ).Add(float64(n)) })
	res.Publish(evs)
	return nil
}
