package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/finding"
)

// HTTPReporter sends the gateway's events to a daemon's POST /v1/events as CloudEvents
// batches. Report only queues: a bounded queue decouples the gateway from the daemon, and when
// the daemon is slow or down, batches are retried a few times and then dropped and counted.
// Findings travel inside the events (data.findings).
type HTTPReporter struct {
	url, token string
	client     *http.Client
	log        *slog.Logger
	queue      chan []byte
	done       chan struct{}
	wg         sync.WaitGroup
	closeOnce  sync.Once

	Sent, Dropped, Failed atomic.Int64
}

// NewHTTPReporter starts a reporter to the daemon at base (e.g. http://127.0.0.1:7700) with a
// bearer token of the ingest role.
func NewHTTPReporter(base, token string, log *slog.Logger) (*HTTPReporter, error) {
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		return nil, fmt.Errorf("server %q: want an http:// or https:// URL", base)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &HTTPReporter{url: strings.TrimRight(base, "/") + "/v1/events", token: token,
		client: &http.Client{Timeout: 10 * time.Second}, log: log, queue: make(chan []byte, 256), done: make(chan struct{})}
	r.wg.Add(1)
	go r.loop()
	return r, nil
}

// Report queues the events as one batch; it never waits.
func (r *HTTPReporter) Report(_ context.Context, evs []event.Event, _ []finding.Finding) {
	for len(evs) > 0 {
		n := min(len(evs), 500)
		raws := make([]json.RawMessage, n)
		for i, e := range evs[:n] {
			raws[i] = e.Raw
		}
		evs = evs[n:]
		body, err := json.Marshal(raws)
		if err != nil {
			r.Dropped.Add(int64(n))
			continue
		}
		select {
		case r.queue <- body:
		default:
			r.Dropped.Add(int64(n))
			r.log.Warn("report queue full: events dropped", "events", n)
		}
	}
}

// Close sends what is queued (for at most timeout) and stops.
func (r *HTTPReporter) Close(timeout time.Duration) {
	r.closeOnce.Do(func() {
		close(r.done)
		ch := make(chan struct{})
		go func() { r.wg.Wait(); close(ch) }()
		select {
		case <-ch:
		case <-time.After(timeout):
		}
	})
}

func (r *HTTPReporter) loop() {
	defer r.wg.Done()
	for {
		select {
		case b := <-r.queue:
			r.send(b)
		case <-r.done:
			for {
				select {
				case b := <-r.queue:
					r.send(b)
				default:
					return
				}
			}
		}
	}
}

func (r *HTTPReporter) send(body []byte) {
	backoff := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		status, err := r.post(body)
		switch {
		case err == nil && status < 300:
			r.Sent.Add(1)
			return
		case err == nil && status < 500 && status != http.StatusTooManyRequests:
			r.Failed.Add(1)
			r.log.Error("daemon refused events", "url", r.url, "status", status)
			return
		case attempt == 3:
			r.Failed.Add(1)
			r.log.Error("cannot report events", "url", r.url, "status", status, "err", err)
			return
		}
		select {
		case <-time.After(backoff):
			backoff *= 4
		case <-r.done:
			if attempt >= 2 {
				r.Failed.Add(1)
				return
			}
		}
	}
}

func (r *HTTPReporter) post(body []byte) (int, error) {
	req, err := http.NewRequest(http.MethodPost, r.url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/cloudevents-batch+json")
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	return resp.StatusCode, nil
}
