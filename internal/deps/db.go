package deps

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
)

// Limits on an OSV database, so a hostile or broken one cannot exhaust memory.
const (
	maxRecordSize = 16 << 20 // one advisory file
	maxRecords    = 5_000_000
)

// DB is an offline OSV database indexed by PEP 503 normalized PyPI name. It is read-only after
// LoadOSV and safe for concurrent use.
type DB struct {
	byName map[string][]entry
	stats  LoadStats
}

type entry struct {
	rec *Record
	aff int // index into rec.Affected
}

// LoadStats says what LoadOSV read and what it left out.
type LoadStats struct {
	Files     int      // advisory files read
	Records   int      // records indexed (at least one PyPI package, not withdrawn)
	Withdrawn int      // withdrawn records ignored
	Other     int      // records with no PyPI package
	Bad       int      // files that could not be decoded
	Errors    []string // the first few decoding errors
}

// Stats returns what the load read.
func (db *DB) Stats() LoadStats { return db.stats }

// Packages returns how many distinct package names have advisories.
func (db *DB) Packages() int { return len(db.byName) }

type rawFile struct {
	name string
	read func() ([]byte, error)
}

// LoadOSV reads OSV records (JSON or YAML) from each path: a directory, searched recursively,
// a zip archive in the layout of osv.dev's per-ecosystem all.zip, or a single record file.
// Withdrawn records and packages of other ecosystems are left out; files that fail to decode are
// counted in Stats, not fatal. An unreadable path is an error.
func LoadOSV(paths ...string) (*DB, error) {
	if len(paths) == 0 {
		return nil, errors.New("load osv database: no path given")
	}
	var files []rawFile
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	for _, p := range paths {
		fs, c, err := listOSV(p)
		if err != nil {
			return nil, err
		}
		if c != nil {
			closers = append(closers, c)
		}
		files = append(files, fs...)
	}
	if len(files) > maxRecords {
		return nil, fmt.Errorf("load osv database: %d files, more than the limit of %d", len(files), maxRecords)
	}
	return index(files), nil
}

func listOSV(path string) ([]rawFile, io.Closer, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("load osv database %s: %w", path, err)
	}
	if st.IsDir() {
		var out []rawFile
		err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && p != path && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			if d.Type().IsRegular() && isRecordName(p) {
				out = append(out, rawFile{name: p, read: func() ([]byte, error) { return readLimited(p, maxRecordSize) }})
			}
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("load osv database %s: %w", path, err)
		}
		return out, nil, nil
	}
	if strings.EqualFold(filepath.Ext(path), ".zip") {
		zr, err := zip.OpenReader(path)
		if err != nil {
			return nil, nil, fmt.Errorf("load osv database %s: %w", path, err)
		}
		var out []rawFile
		for _, f := range zr.File {
			if f.FileInfo().IsDir() || !isRecordName(f.Name) {
				continue
			}
			out = append(out, rawFile{name: path + "!" + f.Name, read: func() ([]byte, error) { return readZipEntry(f) }})
		}
		return out, zr, nil
	}
	return []rawFile{{name: path, read: func() ([]byte, error) { return readLimited(path, maxRecordSize) }}}, nil, nil
}

func isRecordName(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".json", ".yaml", ".yml":
		return true
	}
	return false
}

func readZipEntry(f *zip.File) ([]byte, error) {
	if f.UncompressedSize64 > maxRecordSize {
		return nil, fmt.Errorf("%s: %d bytes, more than the limit of %d", f.Name, f.UncompressedSize64, maxRecordSize)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxRecordSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxRecordSize {
		return nil, fmt.Errorf("%s: more than the limit of %d bytes", f.Name, maxRecordSize)
	}
	return data, nil
}

// index decodes the files on every core and builds the name index.
func index(files []rawFile) *DB {
	type result struct {
		rec *Record
		err error
	}
	jobs := make(chan rawFile)
	results := make(chan result, 64)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range jobs {
				data, err := f.read()
				if err != nil {
					results <- result{err: fmt.Errorf("read %s: %w", f.name, err)}
					continue
				}
				rec, err := decodeRecord(f.name, data)
				results <- result{rec: rec, err: err}
			}
		}()
	}
	go func() {
		for _, f := range files {
			jobs <- f
		}
		close(jobs)
		wg.Wait()
		close(results)
	}()
	db := &DB{byName: map[string][]entry{}}
	for r := range results {
		db.stats.Files++
		if r.err != nil {
			db.stats.Bad++
			if len(db.stats.Errors) < 5 {
				db.stats.Errors = append(db.stats.Errors, r.err.Error())
			}
			continue
		}
		db.add(r.rec)
	}
	for _, es := range db.byName {
		sort.Slice(es, func(i, j int) bool {
			if es[i].rec.ID != es[j].rec.ID {
				return es[i].rec.ID < es[j].rec.ID
			}
			return es[i].aff < es[j].aff
		})
	}
	return db
}

func (db *DB) add(r *Record) {
	if r.Withdrawn != "" {
		db.stats.Withdrawn++
		return
	}
	n := 0
	for i, a := range r.Affected {
		if !isPyPI(a.Package.Ecosystem) || a.Package.Name == "" {
			continue
		}
		k := Normalize(a.Package.Name)
		db.byName[k] = append(db.byName[k], entry{rec: r, aff: i})
		n++
	}
	if n == 0 {
		db.stats.Other++
		return
	}
	db.stats.Records++
}

func isPyPI(eco string) bool {
	base, _, _ := strings.Cut(eco, ":")
	return strings.EqualFold(base, PyPI)
}
