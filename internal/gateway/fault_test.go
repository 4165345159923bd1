package gateway

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/pipewarden/pipewarden/internal/gateway/protocol"
)

// TestOnErrorPolicy: a fault inside the inline checks (here a parser that panics) forwards the
// request under fail_open and answers 503 under fail_closed; both are counted.
func TestOnErrorPolicy(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{}`)) }))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	for policy, want := range map[OnError]int{FailOpen: 200, FailClosed: 503} {
		g, err := New(Options{Routes: []Route{{Upstream: u}}, OnError: policy})
		if err != nil {
			t.Fatal(err)
		}
		g.routes[0].parser = nil // Parse on a nil parser panics
		w := httptest.NewRecorder()
		g.ServeHTTP(w, httptest.NewRequest("POST", "/", strings.NewReader(`{"inputs":[]}`)))
		if w.Code != want || g.Stats().Faults != 1 {
			t.Errorf("%s: status %d, faults %d; want %d and 1", policy, w.Code, g.Stats().Faults, want)
		}
		g.Close()
	}
}

// TestFullQueueDropsAndCounts: when the detectors are behind, samples are dropped, never waited
// for.
func TestFullQueueDropsAndCounts(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:1")
	g, err := New(Options{Routes: []Route{{Upstream: u}}, QueueSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	g.Close() // the detector goroutine is gone: nothing drains the queue
	rt := g.routes[0]
	for range 5 {
		g.enqueue(&sample{client: "c", route: rt, req: &protocol.Request{Rows: 1, Width: 1, Vals: []float64{1}}})
	}
	if s := g.Stats(); s.DroppedSamples != 3 || s.QueueLength != 2 {
		t.Fatalf("dropped %d, queued %d; want 3 and 2", s.DroppedSamples, s.QueueLength)
	}
}
