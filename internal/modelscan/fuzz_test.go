package modelscan_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/modelscan"
)

// fuzzScanner has small limits so that every input is cheap; the properties under test are no
// panic, bounded memory and time, and never "clean" for what it could not read.
func fuzzScanner(t testing.TB) *modelscan.Scanner {
	s, err := modelscan.New(modelscan.Options{Limits: modelscan.Limits{
		MaxInMemory: 1 << 20, MaxOpcodes: 1 << 20, MaxScanTime: 5 * time.Second, MaxMemberBytes: 4 << 20,
		MaxMembers: 256, MaxMemo: 1 << 16, MaxStackDepth: 1 << 16,
	}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func addSeeds(f *testing.F, pattern string) {
	files, _ := filepath.Glob(pattern)
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err == nil && len(b) < 1<<16 {
			f.Add(b)
		}
	}
}

func fuzzScan(t *testing.T, s *modelscan.Scanner, name string, data []byte) modelscan.FileResult {
	r := s.ScanReader(context.Background(), name, bytes.NewReader(data), int64(len(data)))
	for _, f := range r.Findings {
		if err := f.Validate(); err != nil {
			t.Fatalf("invalid finding: %v", err)
		}
	}
	if r.Outcome == modelscan.Skipped {
		t.Fatalf("a named model file was skipped")
	}
	return r
}

func FuzzPickleWalker(f *testing.F) {
	addSeeds(f, "testdata/gen/*.pkl")
	addSeeds(f, filepath.Join(sharedModels, "picklescan", "*.pkl"))
	s := fuzzScanner(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		r := fuzzScan(t, s, "fuzz.pkl", data)
		if len(data) > 0 && data[0] == 0x80 && !bytes.Contains(data, []byte{'.'}) && r.Outcome == modelscan.Clean {
			t.Fatalf("a pickle without STOP was reported clean")
		}
	})
}

func FuzzZipReader(f *testing.F) {
	addSeeds(f, "testdata/gen/*.zip")
	addSeeds(f, "testdata/gen/*.pt")
	addSeeds(f, filepath.Join(sharedModels, "picklescan", "*.zip"))
	s := fuzzScanner(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzScan(t, s, "fuzz.zip", data)
	})
}

func FuzzSafetensorsHeader(f *testing.F) {
	addSeeds(f, "testdata/gen/*.safetensors")
	s := fuzzScanner(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		r := fuzzScan(t, s, "fuzz.safetensors", data)
		// Dispatch is on content: bytes that are, say, a harmless pickle are judged as one
		// whatever the name says. A file read as safetensors must not pass with a header
		// length past its end.
		if r.Format == "safetensors" && len(data) >= 8 && binary.LittleEndian.Uint64(data) > uint64(len(data)) && r.Outcome == modelscan.Clean {
			t.Fatalf("header length past the end reported clean")
		}
	})
}

// TestClaimsAllocateNothing: inputs that claim gigabytes (a 4 GiB frame, a 1 TiB string, a
// safetensors header of 2^40 bytes, a zip member of 4 GiB) cost kilobytes.
func TestClaimsAllocateNothing(t *testing.T) {
	zipClaim := []byte("PK\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\x08\x00\x00\x00data.pkl" +
		"PK\x01\x02\x14\x00\x14\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00data.pkl" +
		"PK\x05\x06\x00\x00\x00\x00\x01\x00\x01\x00\x36\x00\x00\x00\x26\x00\x00\x00\x00\x00")
	cases := map[string][]byte{
		"frame.pkl":          append([]byte("\x80\x04\x95\x00\x00\x00\x00\x01\x00\x00\x00"), "N."...),
		"string.pkl":         append([]byte("\x80\x04\x8d\x00\x00\x00\x00\x00\x01\x00\x00"), "xx"...),
		"header.safetensors": append([]byte{0, 0, 0, 0, 0, 1, 0, 0}, `{"a":1}`...),
		"member.zip":         zipClaim,
		"memo.pkl":           []byte("\x80\x04Vx\nr\xff\xff\xff\xff" + strings.Repeat("h\x00", 10) + "."),
	}
	s := fuzzScanner(t)
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			r := s.ScanReader(context.Background(), name, bytes.NewReader(data), int64(len(data)))
			runtime.ReadMemStats(&after)
			if r.Outcome == modelscan.Clean {
				t.Errorf("reported clean: %s", dump(r))
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > 8<<20 {
				t.Errorf("allocated %d bytes for a %d-byte input", got, len(data))
			}
		})
	}
}
