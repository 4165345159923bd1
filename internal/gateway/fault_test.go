package gateway

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/gateway/protocol"
)

// TestOnErrorPolicy: a fault inside the inline checks (here a parser that panics) forwards the
// request under fail_open and answers 503 under fail_closed; both are counted. The same through
// the net/http handler and through the fast front end.
func TestOnErrorPolicy(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	const body = `{"inputs":[]}`
	viaHandler := func(t *testing.T, g *Gateway) (int, string) {
		w := httptest.NewRecorder()
		g.ServeHTTP(w, httptest.NewRequest("POST", "/", strings.NewReader(body)))
		return w.Code, w.Body.String()
	}
	viaFast := func(t *testing.T, g *Gateway) (int, string) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := NewServer(g, ServerOptions{})
		go s.Serve(ln)
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			s.Shutdown(ctx)
		}()
		resp, err := http.Post("http://"+ln.Addr().String()+"/", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if fast, _ := s.Counts(); fast != 1 {
			t.Errorf("%d fast requests, want 1", fast)
		}
		return resp.StatusCode, string(b)
	}
	for front, via := range map[string]func(*testing.T, *Gateway) (int, string){"handler": viaHandler, "fast": viaFast} {
		for policy, want := range map[OnError]int{FailOpen: 200, FailClosed: 503} {
			t.Run(front+"/"+string(policy), func(t *testing.T) {
				g, err := New(Options{Routes: []Route{{Upstream: u}}, OnError: policy})
				if err != nil {
					t.Fatal(err)
				}
				defer g.Close()
				g.routes[0].parser = nil // Parse on a nil parser panics
				code, got := via(t, g)
				if code != want || g.Stats().Faults != 1 {
					t.Errorf("status %d, faults %d; want %d and 1", code, g.Stats().Faults, want)
				}
				if want == 200 && got != body {
					t.Errorf("the upstream got %q", got)
				}
			})
		}
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
