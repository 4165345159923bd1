// Command deps-bench generates a synthetic OSV database (a zip in osv.dev's all.zip layout) and
// a lockfile, then times deps.LoadOSV and deps.Check on them. Seeded: the same flags give the
// same data.
package main

import (
	"archive/zip"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/pipewarden/pipewarden/internal/deps"
)

func main() {
	records := flag.Int("records", 50000, "OSV records to generate")
	packages := flag.Int("packages", 1000, "packages in the lockfile")
	names := flag.Int("names", 10000, "distinct package names the records cover")
	dir := flag.String("dir", "", "output directory (default: a temporary one)")
	runs := flag.Int("runs", 5, "check repetitions (the median is reported)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of load and check to this file")
	flag.Parse()
	out := *dir
	if out == "" {
		var err error
		if out, err = os.MkdirTemp("", "deps-bench"); err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(out)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	dbPath := filepath.Join(out, "all.zip")
	lockPath := filepath.Join(out, "requirements.txt")
	if err := writeDB(dbPath, rng, *records, *names); err != nil {
		log.Fatal(err)
	}
	if err := writeLockfile(lockPath, rng, *packages, *names); err != nil {
		log.Fatal(err)
	}
	st, _ := os.Stat(dbPath)
	fmt.Printf("generated %d records over %d names (%.1f MB zip), lockfile of %d packages\n", *records, *names, float64(st.Size())/1e6, *packages)

	if *cpuprofile != "" {
		pf, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	runtime.GC()
	t0 := time.Now()
	db, err := deps.LoadOSV(dbPath)
	if err != nil {
		log.Fatal(err)
	}
	load := time.Since(t0)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("load: %v (%d records indexed, %d names; heap %.0f MB)\n", load.Round(time.Millisecond), db.Stats().Records, db.Packages(), float64(ms.HeapAlloc)/1e6)

	t0 = time.Now()
	lf, err := deps.ParseLockfile(lockPath)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("parse lockfile: %v\n", time.Since(t0).Round(time.Microsecond))
	squats := deps.DefaultTyposquats()
	var times []time.Duration
	var n int
	for range *runs {
		t0 = time.Now()
		fs := deps.Check(lf, deps.Options{DB: db, Typosquats: squats})
		times = append(times, time.Since(t0))
		n = len(fs)
	}
	slicesSort(times)
	fmt.Printf("check: median %v of %d runs (%d findings)\n", times[len(times)/2].Round(time.Millisecond), *runs, n)
}

func slicesSort(d []time.Duration) {
	for i := 1; i < len(d); i++ {
		for j := i; j > 0 && d[j] < d[j-1]; j-- {
			d[j], d[j-1] = d[j-1], d[j]
		}
	}
}

func pkgName(i int) string { return fmt.Sprintf("benchpkg-%05d", i) }

func version(rng *rand.Rand) string {
	v := fmt.Sprintf("%d.%d.%d", rng.IntN(5), rng.IntN(30), rng.IntN(20))
	switch rng.IntN(10) {
	case 0:
		v += fmt.Sprintf("rc%d", rng.IntN(3))
	case 1:
		v += fmt.Sprintf(".post%d", rng.IntN(3))
	case 2:
		v += fmt.Sprintf(".dev%d", rng.IntN(3))
	}
	return v
}

func writeDB(path string, rng *rand.Rand, records, names int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	vectors := []string{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:N/I:N/A:H", "CVSS:3.1/AV:N/AC:H/PR:L/UI:N/S:C/C:L/I:L/A:N"}
	for i := range records {
		id := fmt.Sprintf("PYSEC-2099-%06d", i)
		major := rng.IntN(5)
		events := []map[string]string{{"introduced": "0"}}
		for k := 0; k < 1+rng.IntN(3); k++ {
			events = append(events, map[string]string{"fixed": fmt.Sprintf("%d.%d.%d", major, 5*k+rng.IntN(5), rng.IntN(10))})
			events = append(events, map[string]string{"introduced": fmt.Sprintf("%d.%d.0", major, 5*k+5)})
		}
		events = append(events, map[string]string{"fixed": fmt.Sprintf("%d.0.0", major+1)})
		var versions []string
		for range 20 + rng.IntN(30) {
			versions = append(versions, version(rng))
		}
		rec := map[string]any{
			"schema_version": "1.6.0", "id": id, "modified": "2099-01-01T00:00:00Z", "published": "2099-01-01T00:00:00Z",
			"aliases": []string{fmt.Sprintf("CVE-2099-%06d", i)},
			"details": strings.Repeat("A generated advisory for benchmarking. ", 1+rng.IntN(8)),
			"affected": []any{map[string]any{
				"package": map[string]string{"ecosystem": "PyPI", "name": pkgName(rng.IntN(names)), "purl": "pkg:pypi/x"},
				"ranges": []any{
					map[string]any{"type": "GIT", "repo": "https://example.com/repo", "events": []map[string]string{{"introduced": "0"}, {"fixed": "0123456789abcdef0123456789abcdef01234567"}}},
					map[string]any{"type": "ECOSYSTEM", "events": events},
				},
				"versions": versions,
			}},
			"references": []any{map[string]string{"type": "WEB", "url": "https://example.com/advisory/" + id}},
		}
		if rng.IntN(2) == 0 {
			rec["severity"] = []any{map[string]string{"type": "CVSS_V3", "score": vectors[rng.IntN(len(vectors))]}}
		}
		data, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		w, err := zw.Create(id + ".json")
		if err != nil {
			return err
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
	}
	return zw.Close()
}

func writeLockfile(path string, rng *rand.Rand, packages, names int) error {
	var b strings.Builder
	for _, i := range rng.Perm(names)[:packages] {
		fmt.Fprintf(&b, "%s==%s \\\n    --hash=sha256:%064x\n", pkgName(i), version(rng), rng.Uint64())
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
