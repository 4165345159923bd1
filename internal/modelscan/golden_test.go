package modelscan_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/modelscan"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/golden-findings.jsonl.gz from the current scanner")

// goldenPath holds the findings the scanner produced for every differential case before the
// pickle walker was rewritten for speed (commit "modelscan: golden findings before the fast
// walker"). The walker must keep producing exactly these.
const goldenPath = "testdata/golden-findings.jsonl.gz"

// goldenCase is one input of the differential test and the scanner that judges it.
type goldenCase struct {
	name   string // unique key
	file   string // name given to the scanner (its extension makes the scan stricter)
	data   []byte
	limits int // 0, or 1 + the index in tightLimits of the limits the scanner runs with
}

// goldenResult is what must not change: outcome, format and every finding's rule, severity,
// title and evidence (offsets, counts, reasons).
type goldenResult struct {
	Case     string          `json:"case"`
	Outcome  string          `json:"outcome"`
	Format   string          `json:"format"`
	Findings json.RawMessage `json:"findings"`
}

// goldenCases are the fixtures, the generated cases, the benchmark pickles at small sizes, the
// fixtures again under tight limits, and a seeded corpus of mutants of every small fixture
// (truncations, flipped and inserted opcodes, deleted and repeated ranges, splices).
func goldenCases(t testing.TB) []goldenCase {
	var seeds []goldenCase
	for _, dir := range []string{
		filepath.Join(sharedModels, "picklescan"), filepath.Join(sharedModels, "benign-torch"),
		filepath.Join(sharedModels, "modelscan"), filepath.Join("testdata", "gen"),
	} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Name() == "LICENSE" {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			seeds = append(seeds, goldenCase{name: filepath.Base(dir) + "/" + e.Name(), file: e.Name(), data: b})
		}
	}
	seeds = append(seeds,
		goldenCase{name: "bench/objects", file: "objects.pkl", data: manySmallObjects(3000)},
		goldenCase{name: "bench/model", file: "data.pkl", data: modelPickle(1200)})
	cases := append([]goldenCase(nil), seeds...)
	for i := range tightLimits {
		for _, s := range seeds {
			c := s
			c.name, c.limits = fmt.Sprintf("limited%d/%s", i, s.name), i+1
			cases = append(cases, c)
		}
	}
	rng := rand.New(rand.NewPCG(7, 11))
	opcodes := []byte("(.012FIJKLMNPQRSTUVXabcd}eghijl]opqrst)uGBC\x80\x81\x82\x85\x86\x87\x88\x89\x8a\x8c\x8d\x8e\x8f\x90\x91\x92\x93\x94\x95\x96\x97\x98")
	for _, s := range seeds {
		if len(s.data) > 64<<10 || len(s.data) < 2 {
			continue
		}
		for i := 0; i < 8; i++ {
			d := append([]byte(nil), s.data...)
			a, b := rng.IntN(len(d)), rng.IntN(len(d))
			if a > b {
				a, b = b, a
			}
			var kind string
			switch i {
			case 0:
				kind, d = "truncate", d[:a]
			case 1, 2:
				kind, d[a] = "flip", opcodes[rng.IntN(len(opcodes))]
			case 3:
				ins := []byte{opcodes[rng.IntN(len(opcodes))]}
				for k := rng.IntN(9); k > 0; k-- {
					ins = append(ins, byte(rng.IntN(256)))
				}
				kind, d = "insert", append(d[:a:a], append(ins, d[a:]...)...)
			case 4:
				kind, d = "delete", append(d[:a:a], d[min(b, a+16):]...)
			case 5:
				kind, d = "repeat", append(d[:b:b], append(append([]byte(nil), d[a:min(b, a+64)]...), d[b:]...)...)
			case 6:
				o := seeds[rng.IntN(len(seeds))].data
				kind, d = "splice", append(d[:a:a], o[rng.IntN(len(o)):]...)
			case 7:
				kind = "byte"
				d[a] ^= byte(1 + rng.IntN(255))
			}
			cases = append(cases, goldenCase{name: fmt.Sprintf("mutant/%s/%d-%s", s.name, i, kind), file: s.file, data: d})
		}
	}
	return cases
}

// tightLimits are small enough that each limit is reached by some fixture.
var tightLimits = []modelscan.Limits{
	{MaxOpcodes: 400, MaxMemo: 24, MaxStackDepth: 24, MaxStringBytes: 300, MaxStorageCount: 3,
		MaxMembers: 8, MaxInMemory: 64 << 10, MaxMemberBytes: 256 << 10, MaxHeaderBytes: 4 << 10},
	{MaxOpcodes: 40},
	{MaxStackDepth: 5},
	{MaxMemo: 3},
	{MaxStringBytes: 12},
	{MaxStorageCount: 1, MaxDepth: 1},
	// The walker compacts its heap every few dozen items: every compaction path is taken.
	{MaxInMemory: 4096},
}

// goldenScanners returns the scanner with default limits, then one per tightLimits.
func goldenScanners(t testing.TB) []*modelscan.Scanner {
	now := func() time.Time { return time.Unix(0, 0) }
	var out []*modelscan.Scanner
	for _, l := range append([]modelscan.Limits{{}}, tightLimits...) {
		s, err := modelscan.New(modelscan.Options{Now: now, Limits: l})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func goldenOf(t testing.TB, scanners []*modelscan.Scanner, c goldenCase) goldenResult {
	s := scanners[c.limits]
	r := s.ScanReader(context.Background(), c.file, bytes.NewReader(c.data), int64(len(c.data)))
	type fnd struct {
		Rule     string         `json:"rule"`
		Severity string         `json:"severity"`
		Title    string         `json:"title"`
		Evidence map[string]any `json:"evidence"`
	}
	// Sorted: the ZIP reader's order of findings about one archive is not stable, and order
	// is not what this test is about.
	fs := make([]json.RawMessage, 0, len(r.Findings))
	for _, f := range r.Findings {
		b, err := json.Marshal(fnd{f.Rule, f.Severity.String(), f.Title, f.Evidence})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		fs = append(fs, b)
	}
	sort.Slice(fs, func(i, j int) bool { return bytes.Compare(fs[i], fs[j]) < 0 })
	raw, err := json.Marshal(fs)
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	return goldenResult{Case: c.name, Outcome: string(r.Outcome), Format: r.Format, Findings: raw}
}

// TestGoldenFindings is the differential test of the pickle walker: on every fixture, generated
// case and mutant, the findings equal those recorded before the walker was rewritten.
func TestGoldenFindings(t *testing.T) {
	cases := goldenCases(t)
	scanners := goldenScanners(t)
	if *updateGolden {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		enc := json.NewEncoder(zw)
		for _, c := range cases {
			if err := enc.Encode(goldenOf(t, scanners, c)); err != nil {
				t.Fatal(err)
			}
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenPath, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %d cases", len(cases))
		return
	}
	f, err := os.Open(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]goldenResult{}
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var g goldenResult
		if err := json.Unmarshal(sc.Bytes(), &g); err != nil {
			t.Fatal(err)
		}
		want[g.Case] = g
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(want) != len(cases) {
		t.Errorf("golden file has %d cases, the corpus %d: regenerate with -update only from a walker known good", len(want), len(cases))
	}
	outcomes := map[string]int{}
	for _, c := range cases {
		got := goldenOf(t, scanners, c)
		w, ok := want[c.name]
		if !ok {
			t.Errorf("%s: no golden result", c.name)
			continue
		}
		outcomes[got.Outcome]++
		if got.Outcome != w.Outcome || got.Format != w.Format || !bytes.Equal(got.Findings, w.Findings) {
			t.Errorf("%s: got %s %s\n%s\nwant %s %s\n%s", c.name, got.Outcome, got.Format, got.Findings, w.Outcome, w.Format, w.Findings)
		}
	}
	// The corpus must exercise every outcome, or it proves little.
	var keys []string
	for k := range outcomes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if got := strings.Join(keys, ","); got != "clean,findings,inconclusive" {
		t.Errorf("outcomes seen: %s", got)
	}
}
