package audit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// witness publishes every checkpoint where the operator of the log's directory cannot rewrite
// it: an append-only file on another path and/or a webhook. Without a witness a Merkle log is
// only as strong as a hash chain: whoever can rewrite the directory can rewrite the records
// and re-sign every checkpoint (or roll the whole directory back) and nothing local can tell.
type witness struct {
	file   *os.File
	path   string
	url    string
	client *http.Client
	origin string
	log    *slog.Logger
	errs   func(target string)
	ch     chan []byte
	done   chan struct{}
}

func openWitness(opts Options, vkey string, l *Log) (*witness, error) {
	w := &witness{path: opts.WitnessFile, url: opts.WitnessURL, client: opts.WitnessClient, origin: l.Origin(), log: l.log}
	w.errs = func(target string) {
		if l.m != nil {
			l.m.witnessErrors.WithLabelValues(target).Inc()
		}
	}
	if w.path != "" {
		if err := w.openFile(vkey, l); err != nil {
			return nil, err
		}
	}
	if w.url != "" {
		if w.client == nil {
			w.client = &http.Client{Timeout: 10 * time.Second}
		}
		w.ch, w.done = make(chan []byte, 256), make(chan struct{})
		go w.deliver()
	}
	return w, nil
}

// openFile opens (creating) the witness file, which pins the key on its first line, and checks
// the log has not gone back behind what the witness saw.
func (w *witness) openFile(vkey string, l *Log) error {
	f, err := os.OpenFile(w.path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("audit witness file: %w", err)
	}
	w.file = f
	ws, err := ReadWitness(f)
	if err != nil {
		f.Close()
		return fmt.Errorf("audit witness file %s: %w", w.path, err)
	}
	if ws.Key == "" {
		if _, err := f.Write(marshalNoteLine(noteLine{Key: vkey})); err != nil {
			f.Close()
			return fmt.Errorf("audit witness file %s: %w", w.path, err)
		}
		return f.Sync()
	}
	if ws.Key != vkey {
		f.Close()
		return fmt.Errorf("audit witness file %s pins key %q but the log's key is %q: the log's key was replaced; run 'pipewarden audit verify --witness %s'", w.path, ws.Key, vkey, w.path)
	}
	if ws.Torn {
		f.Write([]byte("\n")) // never truncate a witness: end the torn line instead
	}
	if len(ws.Checkpoints) > 0 {
		last := ws.Checkpoints[len(ws.Checkpoints)-1]
		if last.Size > l.n {
			f.Close()
			return fmt.Errorf("audit witness file %s saw %d records but the log holds %d: the log was rolled back; run 'pipewarden audit verify --witness %s'", w.path, last.Size, l.n, w.path)
		}
		root, err := tlog.TreeHash(last.Size, fileHashReader{l.hashes, tlog.StoredHashCount(l.n)})
		if err != nil || root != last.Hash {
			f.Close()
			return fmt.Errorf("audit witness file %s: the log's tree at size %d differs from the witnessed checkpoint; run 'pipewarden audit verify --witness %s'", w.path, last.Size, w.path)
		}
	}
	return nil
}

// publish hands one checkpoint to the witnesses. It never blocks appending on the network and
// never fails the checkpoint: failures are logged and counted.
func (w *witness) publish(line, signed []byte) {
	if w.file != nil {
		_, err := w.file.Write(line)
		if err == nil {
			err = w.file.Sync()
		}
		if err != nil {
			w.log.Error("audit witness file write failed", "path", w.path, "err", err)
			w.errs("file")
		}
	}
	if w.ch != nil {
		select {
		case w.ch <- signed:
		default:
			w.log.Error("audit witness webhook queue full: checkpoint not delivered", "url", w.url)
			w.errs("webhook")
		}
	}
}

func (w *witness) deliver() {
	defer close(w.done)
	for signed := range w.ch {
		var err error
		for attempt, wait := 0, time.Second; attempt < 3; attempt, wait = attempt+1, wait*2 {
			if err = w.post(signed); err == nil {
				break
			}
			time.Sleep(wait)
		}
		if err != nil {
			w.log.Error("audit witness webhook failed", "url", w.url, "err", err)
			w.errs("webhook")
		}
	}
}

func (w *witness) post(signed []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(signed))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	req.Header.Set("X-Pipewarden-Audit-Origin", w.origin)
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

func (w *witness) close() error {
	if w.ch != nil {
		close(w.ch)
		select {
		case <-w.done:
		case <-time.After(15 * time.Second):
			w.log.Error("audit witness webhook: gave up waiting for deliveries in flight", "url", w.url)
		}
	}
	if w.file != nil {
		return w.file.Close()
	}
	return nil
}

// WitnessState is what a witness file holds: the key it pins and the checkpoints it saw, signed
// by that key. Lines that do not parse or verify are counted, not fatal.
type WitnessState struct {
	Key         string
	Checkpoints []Checkpoint
	Bad         []string // "line N: reason"
	Torn        bool     // the file does not end with a newline
}

// maxWitnessLines bounds how much of a witness file is read.
const maxWitnessLines = 10_000_000

// ReadWitness reads a witness file (untrusted input).
func ReadWitness(r io.Reader) (WitnessState, error) {
	var ws WitnessState
	var v note.Verifier
	br := bufio.NewReaderSize(r, 64<<10)
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return ws, fmt.Errorf("line %d is too long", lineNo)
		}
		if err == io.EOF {
			ws.Torn = len(line) > 0
			return ws, nil
		}
		if err != nil {
			return ws, err
		}
		if lineNo > maxWitnessLines {
			return ws, fmt.Errorf("more than %d lines", maxWitnessLines)
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		if len(line) == 0 {
			continue
		}
		nl, err := parseNoteLine(line)
		if err != nil {
			ws.Bad = append(ws.Bad, fmt.Sprintf("line %d: %v", lineNo, err))
			continue
		}
		if nl.Key != "" {
			if ws.Key != "" || len(ws.Checkpoints) > 0 || lineNo != 1 {
				ws.Bad = append(ws.Bad, fmt.Sprintf("line %d: a key line after the first line", lineNo))
				continue
			}
			ws.Key = nl.Key
			if v, err = note.NewVerifier(ws.Key); err != nil {
				return ws, fmt.Errorf("line 1: %w", err)
			}
			continue
		}
		if ws.Key == "" {
			return ws, errors.New("first line does not pin a key")
		}
		c, err := openCheckpoint([]byte(nl.Note), v)
		if err != nil {
			ws.Bad = append(ws.Bad, fmt.Sprintf("line %d: %v", lineNo, err))
			continue
		}
		ws.Checkpoints = append(ws.Checkpoints, c)
	}
}
