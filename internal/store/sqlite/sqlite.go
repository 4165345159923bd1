// Package sqlite is the embedded store: one SQLite file in the data directory (modernc.org/sqlite,
// pure Go), WAL journal, hand-written migrations, and one writer connection; the assets derived
// from events live in a second file beside it (assets.go).
package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	moderncsqlite "modernc.org/sqlite" // also registers the "sqlite" driver

	"github.com/pipewarden/pipewarden/internal/store"
)

// useFdatasync makes SQLite commit with fdatasync(2) where the platform has it, as SQLite's
// own builds do on every Linux distribution (the pure-Go library defaults to fsync). fdatasync
// writes the data and the metadata needed to read it back, the file's size included, but not
// its timestamps: a commit is as durable, and on ext4 it no longer waits for a journal commit
// of the WAL's mtime. Measured on the benchmark VM: one 16 KiB overwrite synced, p50 185 →
// 155 µs, p99 594 → 334 µs. The switch is process-wide; elsewhere it stays fsync.
var useFdatasync = sync.OnceFunc(func() { _, _ = moderncsqlite.Fdatasync(true) })

// insertChunk is how many events one multi-row INSERT carries (7 parameters each, well under
// SQLite's limit of 32766 parameters).
const insertChunk = 100

// Options tune the store.
type Options struct {
	// Synchronous is SQLite's synchronous pragma: "full" (default; every commit reaches the
	// disk) or "normal" (survives a process crash, not a power loss).
	Synchronous string
	// Now is the clock; defaults to time.Now.
	Now func() time.Time
	// AssetFlush is how often the asset aggregate is written to the assets database (default
	// 5s; listings flush first, so it bounds only how many events a restart after a crash
	// replays). Under load every flush rewrites each client seen since the last one, so a
	// longer interval writes each of them less often.
	AssetFlush time.Duration
}

// Store is a store.Store on one SQLite file.
type Store struct {
	w  *sql.DB // one connection: SQLite has one writer anyway
	r  *sql.DB // readers, concurrent under WAL
	cp *sql.DB // the background checkpointer's connection

	stopCP, cpDone chan struct{}
	closeOnce      sync.Once
	now            func() time.Time

	raw *rawConn // the event commit's statements on the writer's driver connection (rawwrite.go)

	// Event ranges not written yet (ranges.go), guarded by rmu.
	rmu  sync.Mutex
	pend pendingRanges

	// The asset aggregate and its own database (assets.go). amu guards pending and lastSeq;
	// fmu serialises flushes (flushedSeq is theirs).
	adb                   *sql.DB
	amu, fmu              sync.Mutex
	pending               assetSet
	lastSeq               int64 // highest event seq committed
	flushedSeq            int64 // highest event seq the assets database reflects
	assetFlush            time.Duration
	stopAssets, assetDone chan struct{}
	assetsReady           bool // opened and recovered
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database at path and migrates it.
func Open(ctx context.Context, path string, o Options) (*Store, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	useFdatasync()
	sync := strings.ToUpper(o.Synchronous)
	if sync == "" {
		sync = "FULL"
	}
	if sync != "FULL" && sync != "NORMAL" {
		return nil, fmt.Errorf("sqlite: synchronous must be full or normal, not %q", o.Synchronous)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create directory for %s: %w", path, err)
	}
	q := url.Values{}
	// cache_size: 8 MiB holds a full group commit's new pages (5,000 events) and the hot
	// right-hand edges of the tables; a larger cache made every commit slower, as SQLite walks
	// the cache's hash table when it ends a write transaction (64 MiB: 10 % of the writer's CPU).
	for _, p := range []string{"journal_mode(WAL)", "synchronous(" + sync + ")", "busy_timeout(10000)", "foreign_keys(1)", "temp_store(MEMORY)", "cache_size(-8192)",
		// Checkpoints run in the background (checkpointLoop); the writer checkpoints only if the
		// WAL grows past this many pages anyway, which under steady load is also where the WAL
		// starts over.
		"wal_autocheckpoint(8000)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	dsn := "file:" + path + "?" + q.Encode()
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// Files holding tokens and evidence are private to the user running pipewarden.
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		_ = os.Chmod(f, 0o600)
	}
	rq := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "query_only(1)"} {
		rq.Add("_pragma", p)
	}
	r, err := sql.Open("sqlite", "file:"+path+"?"+rq.Encode())
	if err != nil {
		w.Close()
		return nil, err
	}
	r.SetMaxOpenConns(8)
	// A separate connection copies the WAL into the database while the writer goes on, so a
	// commit never waits for a checkpoint's writes and fsync.
	cp, err := sql.Open("sqlite", "file:"+path+"?"+rq.Encode())
	if err != nil {
		w.Close()
		r.Close()
		return nil, err
	}
	cp.SetMaxOpenConns(1)
	if o.AssetFlush <= 0 {
		o.AssetFlush = 5 * time.Second
	}
	s := &Store{w: w, r: r, cp: cp, now: o.Now, pending: assetSet{}, assetFlush: o.AssetFlush, stopCP: make(chan struct{}), cpDone: make(chan struct{})}
	go s.checkpointLoop()
	if err := s.recoverRanges(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := s.openAssets(ctx, assetsPath(path)); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.recoverAssets(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s.assetsReady = true
	s.stopAssets, s.assetDone = make(chan struct{}), make(chan struct{})
	go s.assetLoop()
	return s, nil
}

// checkpointInterval is how often the background checkpointer copies the WAL into the
// database file. Under steady load the WAL starts over only after the writer's own checkpoint
// (wal_autocheckpoint), which then has just the last interval's pages left to copy.
const checkpointInterval = 250 * time.Millisecond

func (s *Store) checkpointLoop() {
	defer close(s.cpDone)
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopCP:
			return
		case <-t.C:
			// PASSIVE never blocks the writer or readers; what it cannot copy yet waits for
			// the next round. Errors (busy) are retried the same way.
			s.cp.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
		}
	}
}

// Close writes the pending asset aggregate and closes the connection pools.
func (s *Store) Close() error {
	var first error
	s.closeOnce.Do(func() {
		if s.stopCP != nil {
			close(s.stopCP)
			<-s.cpDone
		}
		if s.stopAssets != nil {
			close(s.stopAssets)
			<-s.assetDone
		}
		first = s.flushRanges(context.Background())
		if s.adb != nil {
			if s.assetsReady { // not after a failed open: a partial replay is not a position
				if err := s.FlushAssets(context.Background()); err != nil && first == nil {
					first = err
				}
			}
			if err := s.adb.Close(); err != nil && first == nil {
				first = err
			}
		}
	})
	s.closeRaw()
	if err := s.r.Close(); err != nil && first == nil {
		first = err
	}
	if s.cp != nil {
		s.cp.Close()
	}
	if err := s.w.Close(); err != nil && first == nil {
		first = err
	}
	return first
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
