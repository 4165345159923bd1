// Command ingest is the load generator of the ingestion benchmark: it posts realistic events to a
// running pipewarden serve over HTTP and reports acknowledged events per second and per-request
// latency percentiles. See run.sh and docs/benchmarks.md.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
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
	flag.Parse()
	if *token == "" {
		fmt.Fprintln(os.Stderr, "ingest: -token is required")
		os.Exit(2)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: *conc * 2, MaxConnsPerHost: *conc * 2}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	var seq atomic.Int64
	var acked, failed, throttled atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	deadline := time.Now().Add(*dur)
	var tick <-chan time.Time
	if *rps > 0 {
		tk := time.NewTicker(time.Second / time.Duration(*rps))
		defer tk.Stop()
		tick = tk.C
	}
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			var local []time.Duration
			var buf bytes.Buffer
			for time.Now().Before(deadline) {
				if tick != nil {
					<-tick
				}
				buf.Reset()
				body(&buf, rng, &seq, *batch)
				req, _ := http.NewRequest("POST", *url+"/v1/events", bytes.NewReader(buf.Bytes()))
				req.Header.Set("Authorization", "Bearer "+*token)
				req.Header.Set("Content-Type", "application/cloudevents-batch+json")
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				d := time.Since(t0)
				switch resp.StatusCode {
				case http.StatusAccepted:
					acked.Add(int64(*batch))
					local = append(local, d)
				case http.StatusTooManyRequests:
					throttled.Add(1)
				default:
					failed.Add(1)
				}
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	el := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	fmt.Printf("batch=%d clients=%d rps=%d duration=%s requests=%d acked_events=%d events/s=%.0f p50=%s p99=%s max=%s 429=%d errors=%d\n",
		*batch, *conc, *rps, el.Round(time.Millisecond), len(lat), acked.Load(), float64(acked.Load())/el.Seconds(),
		pct(0.50).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond), pct(1).Round(10*time.Microsecond), throttled.Load(), failed.Load())
}

// authResult fails one login in 25, about what an identity provider sees from people mistyping.
func authResult(rng *rand.Rand) string {
	if rng.IntN(25) == 0 {
		return "failure"
	}
	return "success"
}

var endpoints = []string{"fraud-api", "churn-api", "reco-api"}
var datasets = []string{"customers", "transactions", "clickstream"}

// body writes a batch with the mix a real deployment sends: mostly inference requests, some data,
// training, model and access events.
func body(b *bytes.Buffer, rng *rand.Rand, seq *atomic.Int64, n int) {
	b.WriteByte('[')
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		id := seq.Add(1)
		r := rng.IntN(100)
		switch {
		case r < 80:
			fmt.Fprintf(b, `{"specversion":"1.0","id":"bench-%d-%d","source":"//gateway/%s","type":"pipewarden.inference.request","time":%q,"subject":%q,"data":{"endpoint":%q,"client":"key-%04d","status":%d,"latency_ms":%.2f,"features":[%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f]}}`,
				os.Getpid(), id, endpoints[r%3], now, endpoints[r%3], endpoints[r%3], rng.IntN(5000), []int{200, 200, 200, 200, 400, 500}[rng.IntN(6)], rng.Float64()*20,
				rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64())
		case r < 90:
			ds := datasets[r%3]
			fmt.Fprintf(b, `{"specversion":"1.0","id":"bench-%d-%d","source":"//ingest/%s","type":"pipewarden.data.batch","time":%q,"subject":%q,"data":{"dataset":%q,"source":"s3://lake/%s","path":"part-%05d.parquet","rows":%d,"schema":[{"name":"age","type":"int"},{"name":"income","type":"float"},{"name":"region","type":"string"}],"digest":"sha256:%016x"}}`,
				os.Getpid(), id, ds, now, ds, ds, ds, rng.IntN(1000), 1000+rng.IntN(100000), rng.Uint64())
		case r < 95:
			fmt.Fprintf(b, `{"specversion":"1.0","id":"bench-%d-%d","source":"//iam","type":"pipewarden.access.auth","time":%q,"subject":"user-%d","data":{"principal":"user-%d","result":%q,"source_ip":"10.0.%d.%d"}}`,
				os.Getpid(), id, now, r, r, authResult(rng), rng.IntN(255), rng.IntN(255))
		default:
			fmt.Fprintf(b, `{"specversion":"1.0","id":"bench-%d-%d","source":"//registry","type":"pipewarden.model.artifact","time":%q,"subject":"fraud-detector","data":{"model":"fraud-detector","version":"%d","digest":"sha256:%016x","action":"registered","actor":"ci-bot","signed":true,"path":"models/fraud"}}`,
				os.Getpid(), id, now, rng.IntN(50), rng.Uint64())
		}
	}
	b.WriteByte(']')
}
