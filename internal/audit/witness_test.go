package audit_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/pipewarden/pipewarden/internal/audit"
)

func TestWitnessWebhookReceivesSignedCheckpoints(t *testing.T) {
	var mu sync.Mutex
	var notes [][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
			http.Error(w, "bad request", 400)
			return
		}
		mu.Lock()
		notes = append(notes, b)
		mu.Unlock()
	}))
	defer srv.Close()
	l := openLog(t, t.TempDir(), audit.Options{CheckpointEvery: 100, WitnessURL: srv.URL})
	appendN(t, l, 0, 350, 50)
	key := l.PublicKey()
	if err := l.Close(); err != nil { // waits for deliveries in flight
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	var sizes []int64
	for _, n := range notes {
		c, err := audit.OpenCheckpoint(n, key)
		if err != nil {
			t.Fatalf("webhook got %q: %v", n, err)
		}
		sizes = append(sizes, c.Size)
	}
	if len(sizes) != 4 || sizes[3] != 350 {
		t.Errorf("webhook got checkpoints of sizes %v, want 100, 200, 300, 350", sizes)
	}
}

// TestReadersDuringAppend reads entries and proofs at the published size while another
// goroutine appends (run with -race).
func TestReadersDuringAppend(t *testing.T) {
	l := openLog(t, t.TempDir(), audit.Options{CheckpointEvery: 64})
	defer l.Close()
	appendN(t, l, 0, 10, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 10; i < 2000; i += 10 {
			if err := l.Append(context.Background(), sampleRecords(i, 10)...); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for {
		select {
		case <-done:
			return
		default:
		}
		size := l.Size()
		root, err := l.TreeHash(size)
		if err != nil {
			t.Fatal(err)
		}
		i := size / 2
		p, err := l.InclusionProof(i, size)
		e, err2 := l.Entries(i, i+1)
		if err != nil || err2 != nil {
			t.Fatal(err, err2)
		}
		if err := tlog.CheckRecord(p, size, root, i, tlog.RecordHash(e[0].Raw)); err != nil {
			t.Fatalf("record %d in tree %d: %v", i, size, err)
		}
	}
}
