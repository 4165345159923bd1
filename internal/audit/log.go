package audit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Options configure a Log. The zero value is usable.
type Options struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer // metrics are registered here when set
	Now        func() time.Time
	// CheckpointEvery signs a checkpoint once this many records were appended since the last
	// one (default 10000).
	CheckpointEvery int
	// CheckpointInterval signs a checkpoint this often while there are new records (default
	// 10s; negative turns the timer off).
	CheckpointInterval time.Duration
	// WitnessFile, when set, receives every checkpoint too: an append-only file on another
	// path (another disk, another host's mount, an append-only attribute) that pins the key.
	WitnessFile string
	// WitnessURL, when set, receives every checkpoint as an HTTP POST (text/plain signed note).
	WitnessURL    string
	WitnessClient *http.Client // default: 10s timeout
}

const (
	defaultCheckpointEvery    = 10000
	defaultCheckpointInterval = 10 * time.Second
)

// Log is an open audit log. Append, Checkpoint and Close serialise on one mutex (Append is meant
// to be called from one goroutine, with batches); the read methods (Entries, proofs, Latest)
// run concurrently with them and see every acknowledged record.
type Log struct {
	dir      string
	opts     Options
	log      *slog.Logger
	now      func() time.Time
	signer   note.Signer
	verifier note.Verifier
	vkey     string
	every    int64

	mu          sync.Mutex
	err         error // sticky: the log is closed or a write failed half-way
	records     *os.File
	offsets     *os.File
	hashes      *os.File
	cps         *os.File
	cpEnd       int64
	n           int64 // records written (writer's view)
	recEnd      int64
	sinceCP     int64
	frontier    map[int64]tlog.Hash
	pending     []tlog.Hash
	pendingBase int64
	buf, offBuf []byte
	hashBuf     []byte
	wit         *witness

	size   atomic.Int64 // acknowledged records, for readers
	latest atomic.Pointer[Checkpoint]

	m       *metrics
	stop    chan struct{}
	stopped chan struct{}
}

// ErrClosed is returned by a closed log.
var ErrClosed = errors.New("audit log closed")

// ErrEmpty is returned when a checkpoint is asked of a log with no records.
var ErrEmpty = errors.New("audit log is empty")

// Open opens (creating on first start) the audit log in dir: the directory the log owns, e.g.
// <data dir>/audit. A record cut short by a crash at the end of the log is removed and
// reported; anything else inconsistent is an error that names 'pipewarden audit verify'.
func Open(dir string, opts Options) (*Log, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CheckpointEvery <= 0 {
		opts.CheckpointEvery = defaultCheckpointEvery
	}
	if opts.CheckpointInterval == 0 {
		opts.CheckpointInterval = defaultCheckpointInterval
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit log %s: %w", dir, err)
	}
	signer, vkey, err := loadOrCreateKey(dir)
	if err != nil {
		return nil, err
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, err
	}
	l := &Log{
		dir: dir, opts: opts, log: opts.Logger, now: opts.Now, signer: signer, verifier: verifier,
		vkey: vkey, every: int64(opts.CheckpointEvery), frontier: map[int64]tlog.Hash{},
	}
	files := []struct {
		f    **os.File
		name string
	}{{&l.records, recordsFile}, {&l.offsets, offsetsFile}, {&l.hashes, hashesFile}, {&l.cps, checkpointsFile}}
	for _, f := range files {
		if *f.f, err = os.OpenFile(filepath.Join(dir, f.name), os.O_RDWR|os.O_CREATE, 0o600); err != nil {
			l.closeFiles()
			return nil, fmt.Errorf("audit log: %w", err)
		}
	}
	if err := l.recover(); err != nil {
		l.closeFiles()
		return nil, fmt.Errorf("audit log %s: %w", dir, err)
	}
	if opts.WitnessFile != "" || opts.WitnessURL != "" {
		if l.wit, err = openWitness(opts, vkey, l); err != nil {
			l.closeFiles()
			return nil, err
		}
	}
	if l.m, err = newMetrics(opts.Registerer); err != nil {
		l.closeFiles()
		return nil, fmt.Errorf("audit metrics: %w", err)
	}
	l.m.size.Set(float64(l.n))
	l.stop, l.stopped = make(chan struct{}), make(chan struct{})
	go l.timer()
	return l, nil
}

// PublicKey returns the verifier key (C2SP signed-note vkey) of the log's checkpoints.
func (l *Log) PublicKey() string { return l.vkey }

// Origin is the log's name: the first line of its checkpoints and the name of its key.
func (l *Log) Origin() string { return l.verifier.Name() }

// Size is the number of acknowledged records.
func (l *Log) Size() int64 { return l.size.Load() }

// Latest returns the most recent signed checkpoint, if any.
func (l *Log) Latest() (Checkpoint, bool) {
	c := l.latest.Load()
	if c == nil {
		return Checkpoint{}, false
	}
	return *c, true
}

// Append writes recs in order, durably (written and fsynced before it returns), as one batch:
// either every record is acknowledged or, on error, none is. A zero Time is set to now.
func (l *Log) Append(ctx context.Context, recs ...Record) error {
	if len(recs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return l.err
	}
	start := time.Now()
	now := l.now()
	buf, offs := l.buf[:0], l.offBuf[:0]
	l.pendingBase, l.pending = tlog.StoredHashCount(l.n), l.pending[:0]
	for i := range recs {
		rec := recs[i]
		if rec.Time.IsZero() {
			rec.Time = now
		}
		p := len(buf)
		buf = append(buf, 0, 0, 0, 0, 0, 0, 0, 0)
		var err error
		if buf, err = appendRecord(buf, l.n+int64(i), &rec); err != nil {
			return fmt.Errorf("audit record %d of %d (%s %s): %w", i+1, len(recs), rec.Kind, rec.Action, err)
		}
		if size := len(buf) - p - frameHeader; size > MaxRecordSize {
			return fmt.Errorf("audit record %d of %d (%s %s): %d bytes exceeds %d", i+1, len(recs), rec.Kind, rec.Action, size, MaxRecordSize)
		}
		sealFrame(buf, p)
		offs = binary.BigEndian.AppendUint64(offs, uint64(l.recEnd+int64(p)))
		if err := l.hashRecord(l.n+int64(i), buf[p+frameHeader:]); err != nil {
			return err
		}
	}
	l.buf, l.offBuf = buf, offs
	if err := l.write(buf, offs); err != nil {
		return err
	}
	l.advance(l.n + int64(len(recs)))
	l.recEnd += int64(len(buf))
	l.m.records.Add(float64(len(recs)))
	l.m.size.Set(float64(l.n))
	l.m.appendSeconds.Observe(time.Since(start).Seconds())
	l.sinceCP += int64(len(recs))
	if l.sinceCP >= l.every {
		if _, err := l.checkpointLocked(); err != nil {
			l.log.Error("audit checkpoint failed", "err", err)
		}
	}
	return nil
}

// hashRecord computes the stored hashes of record i into l.pending.
func (l *Log) hashRecord(i int64, payload []byte) error {
	hs, err := tlog.StoredHashesForRecordHash(i, tlog.RecordHash(payload), appendReader{l})
	if err != nil {
		return fmt.Errorf("audit hashes for record %d: %w", i, err)
	}
	l.pending = append(l.pending, hs...)
	return nil
}

// write makes a batch durable: the records are fsynced before Append returns; the derived
// offsets and hashes are fsynced before every checkpoint (recover rebuilds what follows the last
// checkpoint). On failure everything is cut back to the last acknowledged record.
func (l *Log) write(buf, offs []byte) error {
	hb := l.hashBuf[:0]
	for _, h := range l.pending {
		hb = append(hb, h[:]...)
	}
	l.hashBuf = hb
	err := func() error {
		if _, err := l.records.WriteAt(buf, l.recEnd); err != nil {
			return err
		}
		if err := l.records.Sync(); err != nil {
			return err
		}
		if _, err := l.offsets.WriteAt(offs, l.n*8); err != nil {
			return err
		}
		_, err := l.hashes.WriteAt(hb, l.pendingBase*tlog.HashSize)
		return err
	}()
	if err == nil {
		return nil
	}
	err = fmt.Errorf("audit append: %w", err)
	if terr := errors.Join(l.records.Truncate(l.recEnd), l.offsets.Truncate(l.n*8),
		l.hashes.Truncate(l.pendingBase*tlog.HashSize)); terr != nil {
		l.err = fmt.Errorf("%w; the log is unusable until reopened: %w", err, terr)
	}
	return err
}

// advance makes n records current: frontier for the new size, size published to readers.
func (l *Log) advance(n int64) {
	f := make(map[int64]tlog.Hash, 64)
	for _, idx := range frontierIndexes(n) {
		h, err := appendReader{l}.hash(idx)
		if err != nil {
			// Not reachable: every frontier node of n was just computed or already known.
			l.log.Error("audit frontier", "index", idx, "err", err)
			continue
		}
		f[idx] = h
	}
	l.frontier, l.n = f, n
	l.pending, l.pendingBase = l.pending[:0], tlog.StoredHashCount(n)
	l.size.Store(n)
}

// frontierIndexes are the stored-hash indexes of the roots of the complete subtrees that make
// up a tree of n records: all that hashing the next record or the tree root reads.
func frontierIndexes(n int64) []int64 {
	var idx []int64
	var start int64
	for level := 62; level >= 0; level-- {
		if n&(1<<level) != 0 {
			idx = append(idx, tlog.StoredHashIndex(level, start>>level))
			start += 1 << level
		}
	}
	return idx
}

// appendReader reads stored hashes while appending: the batch being built, the frontier, and
// (never needed in practice) the file.
type appendReader struct{ l *Log }

func (r appendReader) hash(idx int64) (tlog.Hash, error) {
	if idx >= r.l.pendingBase && idx-r.l.pendingBase < int64(len(r.l.pending)) {
		return r.l.pending[idx-r.l.pendingBase], nil
	}
	if h, ok := r.l.frontier[idx]; ok {
		return h, nil
	}
	return readHashAt(r.l.hashes, idx)
}

func (r appendReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		h, err := r.hash(idx)
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}

func readHashAt(f *os.File, idx int64) (tlog.Hash, error) {
	var h tlog.Hash
	if _, err := f.ReadAt(h[:], idx*tlog.HashSize); err != nil {
		return h, fmt.Errorf("read stored hash %d: %w", idx, err)
	}
	return h, nil
}

// Checkpoint signs a checkpoint of every acknowledged record now (or returns the latest when
// nothing was appended since), writes it to the checkpoints file and the witnesses.
func (l *Log) Checkpoint() (Checkpoint, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return Checkpoint{}, l.err
	}
	return l.checkpointLocked()
}

func (l *Log) checkpointLocked() (Checkpoint, error) {
	if l.n == 0 {
		return Checkpoint{}, ErrEmpty
	}
	if c := l.latest.Load(); c != nil && c.Size == l.n {
		return *c, nil
	}
	// The checkpoint vouches for the derived files too: make them durable first.
	if err := errors.Join(l.offsets.Sync(), l.hashes.Sync()); err != nil {
		return Checkpoint{}, fmt.Errorf("audit checkpoint: %w", err)
	}
	root, err := tlog.TreeHash(l.n, appendReader{l})
	if err != nil {
		return Checkpoint{}, fmt.Errorf("audit checkpoint: %w", err)
	}
	t := l.now()
	signed, err := note.Sign(&note.Note{Text: formatCheckpointBody(l.Origin(), l.n, root, t)}, l.signer)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("audit checkpoint: %w", err)
	}
	line := marshalNoteLine(noteLine{Note: string(signed)})
	if _, err := l.cps.WriteAt(line, l.cpEnd); err != nil {
		return Checkpoint{}, fmt.Errorf("audit checkpoint: %w", err)
	}
	if err := l.cps.Sync(); err != nil {
		return Checkpoint{}, fmt.Errorf("audit checkpoint: %w", err)
	}
	l.cpEnd += int64(len(line))
	c := &Checkpoint{Origin: l.Origin(), Size: l.n, Hash: root, Time: t.UTC(), Note: signed}
	l.latest.Store(c)
	l.sinceCP = 0
	l.m.checkpoints.Inc()
	if l.wit != nil {
		l.wit.publish(line, signed)
	}
	return *c, nil
}

func (l *Log) timer() {
	defer close(l.stopped)
	if l.opts.CheckpointInterval < 0 {
		<-l.stop
		return
	}
	t := time.NewTicker(l.opts.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.mu.Lock()
			if l.err == nil && l.sinceCP > 0 {
				if _, err := l.checkpointLocked(); err != nil {
					l.log.Error("audit checkpoint failed", "err", err)
				}
			}
			l.mu.Unlock()
		}
	}
}

// Close signs a last checkpoint when records were appended since the previous one, waits for
// webhook deliveries in flight, and closes the files.
func (l *Log) Close() error {
	l.mu.Lock()
	if errors.Is(l.err, ErrClosed) {
		l.mu.Unlock()
		return nil
	}
	var err error
	if l.err == nil && l.sinceCP > 0 {
		_, err = l.checkpointLocked()
	}
	l.err = ErrClosed
	l.mu.Unlock()
	close(l.stop)
	<-l.stopped
	if l.wit != nil {
		err = errors.Join(err, l.wit.close())
	}
	return errors.Join(err, l.closeFiles())
}

func (l *Log) closeFiles() error {
	var err error
	for _, f := range []*os.File{l.records, l.offsets, l.hashes, l.cps} {
		if f != nil {
			err = errors.Join(err, f.Close())
		}
	}
	return err
}
