// Command gen appends generated audit records to an audit log as the daemon would (batches from
// one goroutine, fsync per batch, checkpoints every N records and witnessed) and reports the
// append rate; it then proves random records and tree extensions to show proofs are computable
// at any size. Deterministic for a given -seed.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/pipewarden/pipewarden/internal/audit"
)

func main() {
	n := flag.Int("n", 1_000_000, "records to append")
	batch := flag.Int("batch", 1000, "records per Append call")
	dir := flag.String("dir", "", "log directory (created)")
	witness := flag.String("witness", "", "witness file")
	every := flag.Int("checkpoint-every", 10000, "records per checkpoint")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "gen: -dir is required")
		os.Exit(2)
	}
	l, err := audit.Open(*dir, audit.Options{CheckpointEvery: *every, WitnessFile: *witness})
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	rng := rand.New(rand.NewPCG(*seed, 0))
	stages := []string{"data", "feature", "training", "model", "deploy", "inference", "access", "deps", "infra"}
	base := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	recs := make([]audit.Record, 0, *batch)
	var build time.Duration
	start := time.Now()
	for i := 0; i < *n; {
		t0 := time.Now()
		recs = recs[:0]
		for j := 0; j < *batch && i < *n; j, i = j+1, i+1 {
			st := stages[rng.IntN(len(stages))]
			recs = append(recs, audit.Record{
				Kind: audit.KindEvent, Actor: "ingest-ci", Action: "ingested", Subject: fmt.Sprintf("%s/asset-%d", st, rng.IntN(50)),
				Time: base.Add(time.Duration(i) * time.Millisecond),
				Data: map[string]any{"id": fmt.Sprintf("01J%017d", i), "type": "pipewarden." + st + ".batch", "source": "s3://bucket/path",
					"digest": fmt.Sprintf("sha256:%016x%016x%016x%016x", rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64())},
			})
		}
		build += time.Since(t0)
		if err := l.Append(context.Background(), recs...); err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
	}
	elapsed := time.Since(start) - build
	if err := l.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	fmt.Printf("appended %d records in batches of %d: %.2fs in Append, %.0f records/s (building the records took another %.2fs)\n",
		*n, *batch, elapsed.Seconds(), float64(*n)/elapsed.Seconds(), build.Seconds())

	// Proofs at any size.
	l, err = audit.Open(*dir, audit.Options{CheckpointInterval: -1})
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	defer l.Close()
	size := l.Size()
	t0 := time.Now()
	const proofs = 1000
	for k := 0; k < proofs; k++ {
		t := 1 + rng.Int64N(size)
		i := rng.Int64N(t)
		root, _ := l.TreeHash(t)
		p, err := l.InclusionProof(i, t)
		e, err2 := l.Entries(i, i+1)
		if err != nil || err2 != nil || tlog.CheckRecord(p, t, root, i, tlog.RecordHash(e[0].Raw)) != nil {
			fmt.Fprintln(os.Stderr, "gen: inclusion proof failed", i, t, err, err2)
			os.Exit(1)
		}
		from := 1 + rng.Int64N(t)
		fromRoot, _ := l.TreeHash(from)
		cp, err := l.ConsistencyProof(from, t)
		if err != nil || tlog.CheckTree(cp, t, root, from, fromRoot) != nil {
			fmt.Fprintln(os.Stderr, "gen: consistency proof failed", from, t, err)
			os.Exit(1)
		}
	}
	fmt.Printf("%d random inclusion + consistency proofs at random tree sizes, checked: %.1f µs each\n", proofs, float64(time.Since(t0).Microseconds())/proofs)
}
