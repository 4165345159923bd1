// Command floor is the latency floor the ingestion benchmark is measured against: an HTTP server
// on the same machine that answers POST /v1/events with 202 either at once (-mode null) or after
// appending the body to a file and fdatasync-ing it, with the same group commit as pipewarden's
// store writer (-mode fsync: one goroutine syncs whatever arrived during the previous sync).
// Whatever tail these show under bench/ingest's load is the machine's (its scheduler, virtual
// CPUs and disk), not pipewarden's. See bench/ingest/run.sh and docs/benchmarks/ingest.md.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:7797", "address")
	mode := flag.String("mode", "fsync", "null (answer at once) or fsync (answer after a group-committed fdatasync)")
	dir := flag.String("dir", os.TempDir(), "directory for the fsync mode's file")
	flag.Parse()
	var j *journal
	switch *mode {
	case "null":
	case "fsync":
		f, err := os.CreateTemp(*dir, "floor-*.log")
		if err != nil {
			log.Fatal(err)
		}
		// The file goes when the server is stopped (run.sh sends SIGTERM).
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
		go func() {
			<-stop
			os.Remove(f.Name())
			os.Exit(0)
		}()
		// Allocated up front and overwritten in a cycle, as SQLite reuses its WAL, so that a
		// sync flushes data only, with no file-size change for the file system to journal.
		if _, err := f.Write(make([]byte, span)); err != nil {
			log.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			log.Fatal(err)
		}
		j = newJournal(f)
	default:
		log.Fatalf("floor: -mode %q: want null or fsync", *mode)
	}
	http.HandleFunc("POST /v1/events", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if j != nil {
			if err := j.append(body); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprint(w, `{"accepted":1}`)
	})
	fmt.Printf("floor (%s) listening on %s\n", *mode, *listen)
	log.Fatal(http.ListenAndServe(*listen, nil))
}

const span = 64 << 20 // journal file size

// journal appends records and makes them durable in groups: a record waits for the first
// fdatasync that starts after it was written.
type journal struct {
	f       *os.File
	off     int64
	mu      sync.Mutex
	pending []chan error
	kick    chan struct{}
}

func newJournal(f *os.File) *journal {
	j := &journal{f: f, kick: make(chan struct{}, 1)}
	go j.syncLoop()
	return j
}

func (j *journal) append(rec []byte) error {
	done := make(chan error, 1)
	j.mu.Lock()
	if j.off+int64(len(rec)) > span {
		j.off = 0
	}
	_, err := j.f.WriteAt(rec, j.off)
	j.off += int64(len(rec))
	if err == nil {
		j.pending = append(j.pending, done)
	}
	j.mu.Unlock()
	if err != nil {
		return err
	}
	select {
	case j.kick <- struct{}{}:
	default:
	}
	return <-done
}

func (j *journal) syncLoop() {
	for range j.kick {
		j.mu.Lock()
		batch := j.pending
		j.pending = nil
		j.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		err := fdatasync(j.f)
		for _, c := range batch {
			c <- err
		}
	}
}
