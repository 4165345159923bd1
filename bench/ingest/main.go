// Command ingest is the load generator of the ingestion benchmark: it posts realistic events to a
// running pipewarden serve over HTTP and reports acknowledged events per second and per-request
// latency percentiles. See run.sh and docs/benchmarks.md.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:7700", "pipewarden base URL")
	token := flag.String("token", "", "bearer token (ingest or admin)")
	batch := flag.Int("batch", 100, "events per request")
	conc := flag.Int("c", 8, "concurrent clients")
	dur := flag.Duration("d", 10*time.Second, "duration")
	rps := flag.Int("rps", 0, "fixed request rate (0: as fast as possible)")
	probe := flag.String("probe-disk", "", "only measure fdatasync latency in this directory (no load)")
	probeCPUFor := flag.Duration("probe-cpu", 0, "only measure, for this long, how long the machine keeps a busy thread off each CPU (no load)")
	cpuQoS := flag.Bool("cpu-qos", false, "keep every CPU out of idle halt while the load runs (PM QoS through /dev/cpu_dma_latency, as tuned's latency-performance profile; root)")
	timeline := flag.Bool("timeline", false, "also print, per second of the run, the requests, p50, p99, max and how many took over 5 ms")
	flag.Parse()
	if *probe != "" {
		if err := probeDisk(*probe, 5000, 1000); err != nil {
			fmt.Fprintln(os.Stderr, "ingest:", err)
			os.Exit(1)
		}
		return
	}
	if *probeCPUFor > 0 {
		probeCPU(*probeCPUFor)
		return
	}
	if *token == "" {
		fmt.Fprintln(os.Stderr, "ingest: -token is required")
		os.Exit(2)
	}
	if *cpuQoS {
		f, err := holdCPULatency()
		if err != nil {
			fmt.Fprintln(os.Stderr, "ingest:", err)
			os.Exit(1)
		}
		defer f.Close()
	}
	u, err := neturl.Parse(*url)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		fmt.Fprintf(os.Stderr, "ingest: -url %s: want http://host:port\n", *url)
		os.Exit(2)
	}

	var seq atomic.Int64
	ts := templates(8192)
	prefix := []byte(fmt.Sprintf("bench-%d-", os.Getpid()))
	var acked, failed, throttled atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var marks []mark // with -timeline: when each acknowledged request was due, and its latency
	deadline := time.Now().Add(*dur)
	// With -rps, one scheduler hands out send times start + i/rps, every one of them (a
	// ticker would drop ticks whenever the workers fall behind), and latency is measured from
	// the scheduled time, so a request that waited for a free worker counts its wait
	// (no coordinated omission).
	var due chan time.Time
	var pacing []time.Duration // how late the schedule handed out each send time (the generator's own lateness)
	start := time.Now()
	scheduled := make(chan struct{})
	if *rps > 0 {
		due = make(chan time.Time, *rps*int(dur.Seconds()+1))
		pacing = make([]time.Duration, 0, cap(due))
		go func() {
			defer close(scheduled)
			defer close(due)
			p := newPacer(start)
			every := time.Second / time.Duration(*rps)
			for i := 0; ; i++ {
				at := start.Add(time.Duration(i) * every)
				if !at.Before(deadline) {
					return
				}
				p.until(at)
				pacing = append(pacing, time.Since(at))
				due <- at
			}
		}()
	}
	var wg sync.WaitGroup
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			var local []time.Duration
			var localMarks []mark
			var buf bytes.Buffer
			c := &conn{addr: u.Host, head: []byte("POST /v1/events HTTP/1.1\r\nHost: " + u.Host +
				"\r\nAuthorization: Bearer " + *token + "\r\nContent-Type: application/cloudevents-batch+json\r\nContent-Length: ")}
			defer c.close()
			for time.Now().Before(deadline) {
				var at time.Time
				if due != nil {
					var ok bool
					if at, ok = <-due; !ok {
						break
					}
				}
				buf.Reset()
				body(&buf, rng, ts, prefix, &seq, *batch)
				t0 := time.Now()
				if !at.IsZero() {
					t0 = at
				}
				code, err := c.post(buf.Bytes())
				if err != nil {
					if failed.Add(1) <= 3 {
						fmt.Fprintln(os.Stderr, "ingest:", err)
					}
					continue
				}
				d := time.Since(t0)
				switch code {
				case http.StatusAccepted:
					acked.Add(int64(*batch))
					local = append(local, d)
					if *timeline {
						localMarks = append(localMarks, mark{t0.Sub(start), d})
					}
				case http.StatusTooManyRequests:
					throttled.Add(1)
				default:
					failed.Add(1)
				}
			}
			mu.Lock()
			lat = append(lat, local...)
			marks = append(marks, localMarks...)
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	el := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration { return quantile(lat, p) }
	fmt.Printf("batch=%d clients=%d rps=%d duration=%s requests=%d acked_events=%d events/s=%.0f p50=%s p99=%s max=%s 429=%d errors=%d\n",
		*batch, *conc, *rps, el.Round(time.Millisecond), len(lat), acked.Load(), float64(acked.Load())/el.Seconds(),
		pct(0.50).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond), pct(1).Round(10*time.Microsecond), throttled.Load(), failed.Load())
	if *rps > 0 {
		<-scheduled
	}
	if len(pacing) > 0 {
		sort.Slice(pacing, func(i, j int) bool { return pacing[i] < pacing[j] })
		q := func(p float64) time.Duration { return quantile(pacing, p).Round(time.Microsecond) }
		fmt.Printf("  schedule: send times handed out late by p50=%s p99=%s max=%s (the generator's own timer, counted in the latencies above)\n", q(0.5), q(0.99), q(1))
	}
	if *timeline {
		printTimeline(marks)
	}
}

// quantile returns the p-quantile of sorted durations (0 for none).
func quantile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

// mark is one acknowledged request: when it was due (from the start of the run) and how long it
// took.
type mark struct{ at, lat time.Duration }

// printTimeline prints the latencies second by second, so that slow requests can be placed
// (at the start, every few seconds, in clusters).
func printTimeline(ms []mark) {
	bySec := map[int][]time.Duration{}
	last := 0
	for _, m := range ms {
		s := int(m.at / time.Second)
		bySec[s] = append(bySec[s], m.lat)
		last = max(last, s)
	}
	for s := 0; s <= last; s++ {
		l := bySec[s]
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
		slow := 0
		for _, d := range l {
			if d > 5*time.Millisecond {
				slow++
			}
		}
		q := func(p float64) time.Duration { return quantile(l, p).Round(10 * time.Microsecond) }
		fmt.Printf("  second %2d: requests=%d p50=%s p99=%s max=%s over_5ms=%d\n", s, len(l), q(0.5), q(0.99), q(1), slow)
	}
}

// authResult fails one login in 25, about what an identity provider sees from people mistyping.
func authResult(rng *rand.Rand) string {
	if rng.IntN(25) == 0 {
		return "failure"
	}
	return "success"
}

// status answers 98 requests in 100 with 200, as a healthy model endpoint does.
func status(rng *rand.Rand) int {
	switch rng.IntN(100) {
	case 0:
		return 400
	case 1:
		return 500
	}
	return 200
}

var endpoints = []string{"fraud-api", "churn-api", "reco-api"}
var datasets = []string{"customers", "transactions", "clickstream"}

// event writes one event of the mix a real deployment sends: mostly inference requests, some
// data, model and access events, with id and time as given.
func event(b *bytes.Buffer, rng *rand.Rand, id, now, client, principal string) {
	r := rng.IntN(100)
	switch {
	case r < 80:
		fmt.Fprintf(b, `{"specversion":"1.0","id":"%s","source":"//gateway/%s","type":"pipewarden.inference.request","time":"%s","subject":%q,"data":{"endpoint":%q,"client":"%s","status":%d,"latency_ms":%.2f,"features":[%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f]}}`,
			id, endpoints[r%3], now, endpoints[r%3], endpoints[r%3], client, status(rng), rng.Float64()*20,
			rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64())
	case r < 90:
		ds := datasets[r%3]
		fmt.Fprintf(b, `{"specversion":"1.0","id":"%s","source":"//ingest/%s","type":"pipewarden.data.batch","time":"%s","subject":%q,"data":{"dataset":%q,"source":"s3://lake/%s","path":"part-%05d.parquet","rows":%d,"schema":[{"name":"age","type":"int"},{"name":"income","type":"float"},{"name":"region","type":"string"}],"digest":"sha256:%016x"}}`,
			id, ds, now, ds, ds, ds, rng.IntN(1000), 1000+rng.IntN(100000), rng.Uint64())
	case r < 95:
		fmt.Fprintf(b, `{"specversion":"1.0","id":"%s","source":"//iam","type":"pipewarden.access.auth","time":"%s","subject":"%s","data":{"principal":"%s","result":%q,"source_ip":"10.0.%d.%d"}}`,
			id, now, principal, principal, authResult(rng), rng.IntN(255), rng.IntN(255))
	default:
		fmt.Fprintf(b, `{"specversion":"1.0","id":"%s","source":"//registry","type":"pipewarden.model.artifact","time":"%s","subject":"fraud-detector","data":{"model":"fraud-detector","version":"%d","digest":"sha256:%016x","action":"registered","actor":"ci-bot","signed":true,"path":"models/fraud"}}`,
			id, now, rng.IntN(50), rng.Uint64())
	}
}

// template is an event cut around the parts that change per event: pre, then for each hole its
// filler (id, time or client) and the text after it.
type template struct {
	pre   []byte
	holes []hole
}

type hole struct {
	kind  byte // holeID, holeTime, holeClient
	after []byte
}

const (
	holeID        = 0
	holeTime      = 1
	holeClient    = 2 // one of 5,000 API keys
	holePrincipal = 3 // one of 50,000 users
)

// templates formats n events once, so that building a request costs the load generator (which
// shares the machine with the daemon) a few copies per event instead of a fmt.Fprintf. Ids,
// times and the client of an inference request are filled in per event, so that what a
// template holds (a status, say) is not tied to a few clients.
func templates(n int) []template {
	rng := rand.New(rand.NewPCG(7, 42))
	ts := make([]template, n)
	var b bytes.Buffer
	for i := range ts {
		b.Reset()
		event(&b, rng, "\x00", "\x01", "\x02", "\x03")
		e := b.Bytes()
		cut := bytes.IndexAny(e, "\x00\x01\x02\x03")
		ts[i].pre = bytes.Clone(e[:cut])
		for cut >= 0 {
			kind := e[cut]
			e = e[cut+1:]
			cut = bytes.IndexAny(e, "\x00\x01\x02\x03")
			end := cut
			if end < 0 {
				end = len(e)
			}
			ts[i].holes = append(ts[i].holes, hole{kind: kind, after: bytes.Clone(e[:end])})
		}
	}
	return ts
}

// padded appends n as four digits.
func padded(b []byte, n int) []byte {
	return append(b, byte('0'+n/1000%10), byte('0'+n/100%10), byte('0'+n/10%10), byte('0'+n%10))
}

// body writes a batch of n events drawn from the templates, each with a new id, inference
// requests from one of 5,000 clients and logins of one of 50,000 users.
func body(b *bytes.Buffer, rng *rand.Rand, ts []template, prefix []byte, seq *atomic.Int64, n int) {
	b.WriteByte('[')
	now := time.Now().UTC().AppendFormat(nil, time.RFC3339Nano)
	var num [20]byte
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		t := &ts[rng.IntN(len(ts))]
		b.Write(t.pre)
		user := -1 // a login names its user twice (subject, principal)
		for _, h := range t.holes {
			switch h.kind {
			case holeID:
				b.Write(prefix)
				b.Write(strconv.AppendInt(num[:0], seq.Add(1), 10))
			case holeTime:
				b.Write(now)
			case holeClient:
				b.WriteString("key-")
				b.Write(padded(num[:0], rng.IntN(5000)))
			case holePrincipal:
				b.WriteString("user-")
				if user < 0 {
					user = rng.IntN(50000)
				}
				b.Write(strconv.AppendInt(num[:0], int64(user), 10))
			}
			b.Write(h.after)
		}
	}
	b.WriteByte(']')
}

// conn is one keep-alive HTTP/1.1 connection that posts a body and reads the status, in the
// calling goroutine. net/http's client hands every request to a writer goroutine and every
// response to a reader goroutine; on a 2-core machine shared with the daemon those hand-offs
// would count in the latencies measured, and cost the daemon processor time.
type conn struct {
	addr string
	head []byte // request line and headers up to the Content-Length value
	nc   net.Conn
	br   *bufio.Reader
	req  []byte
}

func (c *conn) close() {
	if c.nc != nil {
		c.nc.Close()
		c.nc = nil
	}
}

// post sends body and returns the response status; the response body is read and dropped. A
// connection that fails is dialled again once.
func (c *conn) post(body []byte) (int, error) {
	for attempt := 0; ; attempt++ {
		fresh := false
		if c.nc == nil {
			nc, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
			if err != nil {
				return 0, err
			}
			c.nc, c.br, fresh = nc, bufio.NewReaderSize(nc, 16<<10), true
		}
		code, err := c.exchange(body)
		if err == nil {
			return code, nil
		}
		c.close()
		if fresh || attempt > 0 {
			return 0, err
		}
	}
}

func (c *conn) exchange(body []byte) (int, error) {
	c.req = append(c.req[:0], c.head...)
	c.req = strconv.AppendInt(c.req, int64(len(body)), 10)
	c.req = append(c.req, "\r\n\r\n"...)
	c.req = append(c.req, body...)
	c.nc.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.nc.Write(c.req); err != nil {
		return 0, err
	}
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	// "HTTP/1.1 202 Accepted"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	length, closing, chunked := -1, false, false
	for {
		h, err := c.br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		k, v, _ := bytes.Cut(h, []byte(":"))
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(v)); err != nil || length < 0 {
				return 0, fmt.Errorf("bad Content-Length %q", v)
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			if !bytes.EqualFold(v, []byte("chunked")) {
				return 0, fmt.Errorf("unexpected Transfer-Encoding %q", v)
			}
			chunked = true
		case bytes.EqualFold(k, []byte("Connection")) && bytes.EqualFold(v, []byte("close")):
			closing = true
		}
	}
	switch {
	case chunked:
		if err := c.discardChunks(); err != nil {
			return 0, err
		}
	case length >= 0:
		if _, err := c.br.Discard(length); err != nil {
			return 0, err
		}
	default:
		return 0, errors.New("response without Content-Length or chunked encoding")
	}
	if closing {
		c.close()
	}
	return code, nil
}

// discardChunks reads a chunked body (RFC 9112 §7.1) to its end, trailers included.
func (c *conn) discardChunks() error {
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		size, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
		n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("bad chunk size %q", line)
		}
		if n == 0 {
			for { // trailers, then the empty line
				t, err := c.br.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(bytes.TrimRight(t, "\r\n")) == 0 {
					return nil
				}
			}
		}
		if _, err := c.br.Discard(int(n) + 2); err != nil {
			return err
		}
	}
}
