package audit

// White-box fuzz tests: the parsers below are unexported and read untrusted bytes (records,
// frames, checkpoints, manifests, witness lines).

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range []string{`{"b":1,"a":[true,null,"x\u0000y"]}`, `1e400`, `-0`, `0.1`, `123456789012345678901234`,
		`{"\ud83d\ude00":1,"\uffff":2}`, `"\ud800"`, `[1.5e-7,1e21,-1e-6]`, `{"a":{"a":{"a":{}}}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		v, err := parseJSON(b)
		if err != nil {
			return
		}
		c1, err := appendCanonical(nil, v, 0)
		if err != nil {
			return // numbers out of range, depth
		}
		if !json.Valid(c1) {
			t.Fatalf("canonical form %q of %q is not JSON", c1, b)
		}
		v2, err := parseJSON(c1)
		if err != nil {
			t.Fatalf("canonical form %q does not parse: %v", c1, err)
		}
		c2, err := appendCanonical(nil, v2, 0)
		if err != nil || !bytes.Equal(c1, c2) {
			t.Fatalf("canonical form not idempotent: %q -> %q (%v)", c1, c2, err)
		}
	})
}

func FuzzParseRecord(f *testing.F) {
	r := Record{Kind: KindFinding, Actor: "a", Action: "raised", Subject: "model/m", Time: time.Unix(1700000000, 5).UTC(),
		Data: map[string]any{"severity": "high", "n": 1.5, "tags": []any{"x", nil, true}}}
	good, _ := appendRecord(nil, 7, &r)
	f.Add(good)
	f.Add([]byte(`{"index":0,"kind":"event","time":"2025-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"data":{},"index":0,"kind":"event","time":"2025-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		idx, rec, err := ParseRecord(b)
		hIdx, hKind, ok := recordHeader(b)
		if err != nil {
			return
		}
		again, err := appendRecord(nil, idx, &rec)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted %q but it re-encodes as %q (%v)", b, again, err)
		}
		if !ok || hIdx != idx || Kind(hKind) != rec.Kind {
			t.Fatalf("header scan of %q = %d %q %v; ParseRecord says %d %q", b, hIdx, hKind, ok, idx, rec.Kind)
		}
	})
}

func FuzzFrames(f *testing.F) {
	var b []byte
	for _, p := range []string{`{"index":0}`, `x`} {
		start := len(b)
		b = append(b, make([]byte, 8)...)
		b = append(b, p...)
		sealFrame(b, start)
	}
	f.Add(b)
	f.Add(b[:5])
	f.Fuzz(func(t *testing.T, b []byte) {
		fr := newFrameReader(bytes.NewReader(b), 0)
		for i := 0; i <= len(b); i++ {
			p, off, err := fr.next()
			if err == io.EOF || errors.Is(err, errTorn) {
				return
			}
			var fe *frameError
			if err != nil && (!errors.As(err, &fe) || !fe.Intact) {
				return
			}
			if off < 0 || off+frameHeader+int64(len(p)) > int64(len(b)) || len(p) > MaxRecordSize {
				t.Fatalf("frame at %d of %d bytes outside a %d-byte input", off, len(p), len(b))
			}
		}
		t.Fatal("frame reader did not advance")
	})
}

func FuzzCheckpointAndManifest(f *testing.F) {
	f.Add("pipewarden/audit/x\n10\n" + strings.Repeat("A", 43) + "=\ntime 2025-01-01T00:00:00Z\n")
	f.Add(bundleHeader + "\norigin o\nperiod - -\nrecords 0 5\ntree 9 " + strings.Repeat("A", 43) + "=\nsha256 " + strings.Repeat("0", 64) + " records\n")
	f.Add(`{"key":"a+b+c"}`)
	f.Fuzz(func(t *testing.T, s string) {
		if c, err := parseCheckpointBody(s); err == nil && (c.Size < 0 || c.Origin == "") {
			t.Fatalf("accepted checkpoint %q with size %d origin %q", s, c.Size, c.Origin)
		}
		if m, err := parseManifest(s); err == nil && (m.First < 0 || m.Next <= m.First || m.TreeSize < m.Next) {
			t.Fatalf("accepted manifest %q with range [%d, %d) of %d", s, m.First, m.Next, m.TreeSize)
		}
		parseNoteLine([]byte(s))
		ReadWitness(strings.NewReader(s))
		claimedSize([]byte(s))
	})
}

// An event record written from EventData is byte for byte the record written from the map of
// the same fields, so either form verifies and reads back the same.
func FuzzEventDataMatchesMap(f *testing.F) {
	f.Add("evt-1", "pipewarden.inference.request", "//gateway/fraud-api", "inference", int64(42), []byte("raw"))
	f.Add("quo\"te\\", "t\u2028", "caf\u00e9 \x00", "", int64(-1), []byte{})
	f.Add("bad\xffutf8", "<&>", "\xed\xa0\x80", "x", int64(1<<62), []byte("{}"))
	f.Fuzz(func(t *testing.T, id, typ, source, stage string, seq int64, raw []byte) {
		d := EventData{ID: id, Type: typ, Source: source, Stage: stage, Seq: seq, Sum: sha256.Sum256(raw)}
		at := time.Date(2026, 11, 26, 12, 0, 0, 123, time.UTC)
		withMap := Record{Kind: KindEvent, Actor: "ingest", Action: "ingested", Subject: "s", Time: at,
			Data: map[string]any{"id": id, "type": typ, "source": source, "digest": "sha256:" + hex.EncodeToString(d.Sum[:]), "stage": stage, "seq": seq}}
		withEvent := Record{Kind: KindEvent, Actor: "ingest", Action: "ingested", Subject: "s", Time: at, Event: &d}
		want, err := appendRecord(nil, 7, &withMap)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendRecord(nil, 7, &withEvent)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("EventData wrote\n%s\nthe map writes\n%s", got, want)
		}
		idx, back, err := ParseRecord(got)
		if err != nil || idx != 7 || back.Data["id"] != withMap.Data["id"] && utf8.ValidString(id) {
			t.Fatalf("read back: %d %+v %v", idx, back, err)
		}
	})
}
