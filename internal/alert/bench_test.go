package alert_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/alert"
	"github.com/pipewarden/pipewarden/internal/finding"
)

// benchFindings makes n findings shaped like the rules engine's (labels, evidence with the
// event and its data) over `distinct` fingerprints, seeded.
func benchFindings(n, distinct int) []finding.Finding {
	r := rand.New(rand.NewPCG(1, 2))
	rules := []string{"inference_extraction", "model_unsigned_change", "data_schema_change", "access_privilege_escalation"}
	out := make([]finding.Finding, n)
	for i := range out {
		k := r.IntN(distinct)
		rule := rules[k%len(rules)]
		subject := fmt.Sprintf("client-%d", k)
		out[i] = finding.Finding{ID: fmt.Sprintf("rf-%d", i), Rule: rule, Severity: finding.Severity(1 + k%4), Title: rule + " by " + subject,
			Subject: finding.Subject{Kind: "client", Name: subject}, Confidence: 0.8, ATLAS: []string{"AML.T0024"}, OWASP: []string{"ML05"},
			Labels:   map[string]string{"rule": rule, "stage": "inference", "subject_kind": "client", "subject": subject},
			EventIDs: []string{fmt.Sprintf("ev-%d", i)},
			Evidence: map[string]any{"event": map[string]any{"id": fmt.Sprintf("ev-%d", i), "type": "pipewarden.inference.request", "source": "//gw"},
				"data": map[string]any{"endpoint": "fraud-api", "client": subject, "status": 200, "latency_ms": 4.2}},
		}
	}
	return out
}

// BenchmarkHandle measures findings → alerts with dedup and grouping on the SQLite store: each
// batch of 1000 findings is deduplicated into open alerts, new alerts are routed into groups,
// changed alerts are written in one transaction, and the groups are flushed once per simulated
// second. Run with -cpu 1 for the one-core figure.
func BenchmarkHandle(b *testing.B) {
	for _, distinct := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("fingerprints=%d", distinct), func(b *testing.B) {
			const batch = 1000
			fs := benchFindings(200*batch, distinct)
			clk := &clock{t: t0}
			st := openStore(&testing.T{}, b.TempDir()+"/pw.db", clk.Now)
			defer st.Close()
			cfg := withFileStubs(defaultTestConfig())
			cfg.InhibitRules = append(cfg.InhibitRules, alert.DefaultConfig().InhibitRules...)
			cfg.RateLimit.NewAlertsPerRule = -1
			cfg.AutoResolve.After = -1
			p, err := alert.New(context.Background(), alert.Options{Config: cfg, Store: st, Now: clk.Now})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			done := 0
			for i := 0; done < b.N; i++ {
				n := min(batch, b.N-done)
				off := (i * batch) % len(fs)
				n = min(n, len(fs)-off)
				p.Handle(ctx, fs[off:off+n])
				done += n
				if i%100 == 99 {
					clk.Add(time.Second)
					if err := p.Tick(ctx); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			// CPU time as well as wall time: on a shared machine the wall clock also counts
			// time spent waiting for a core.
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "findings/s")
			b.ReportMetric(float64(b.N)/(cpuTime()-cpu0).Seconds(), "findings/cpu-s")
			s, _ := p.Stats(ctx)
			if s.Findings != int64(b.N) || s.Alerts > int64(distinct) {
				b.Fatalf("stats %+v after %d findings", s, b.N)
			}
		})
	}
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
