package store_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/pipewarden/pipewarden/internal/store"
)

// memState is a StateStore in memory; failAfter > 0 makes the failAfter-th PutState from now on
// fail, as a crash would stop the writes there.
type memState struct {
	m         map[string][]byte
	puts      int
	maxPut    int
	failAfter int
}

func (s *memState) PutState(_ context.Context, key string, v []byte) error {
	if s.failAfter > 0 {
		if s.failAfter--; s.failAfter == 0 {
			return errors.New("crash")
		}
	}
	s.puts++
	s.maxPut = max(s.maxPut, len(v))
	s.m[key] = bytes.Clone(v)
	return nil
}

func (s *memState) GetState(_ context.Context, key string) ([]byte, error) {
	v, ok := s.m[key]
	if !ok {
		return nil, store.ErrNotFound
	}
	return v, nil
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestLargeStateRoundTripsInParts(t *testing.T) {
	ctx := context.Background()
	s := &memState{m: map[string][]byte{}}
	for i, n := range []int{0, 1, store.StatePartSize, store.StatePartSize + 1, 3*store.StatePartSize + store.StatePartSize/2, 10, 0} {
		v := randomBytes(n, uint64(i))
		if err := store.PutLargeState(ctx, s, "rules.snapshot", v); err != nil {
			t.Fatal(err)
		}
		got, err := store.GetLargeState(ctx, s, "rules.snapshot")
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if !bytes.Equal(got, v) {
			t.Fatalf("%d bytes: read back %d different bytes", n, len(got))
		}
	}
	if s.maxPut > store.StatePartSize {
		t.Errorf("one PutState wrote %d bytes, more than a part (%d)", s.maxPut, store.StatePartSize)
	}
	// The last writes were short: nothing of the 4-part value is left in either generation.
	left := 0
	for k, v := range s.m {
		if strings.HasPrefix(k, "rules.snapshot.") {
			left += len(v)
		}
	}
	if left > 10 {
		t.Errorf("%d bytes of older parts left in the store", left)
	}
}

func TestLargeStateCrashMidwayKeepsThePreviousValue(t *testing.T) {
	ctx := context.Background()
	s := &memState{m: map[string][]byte{}}
	old := randomBytes(2*store.StatePartSize+5, 1)
	if err := store.PutLargeState(ctx, s, "k", old); err != nil {
		t.Fatal(err)
	}
	for fail := 1; fail <= 4; fail++ { // the new value needs 4 parts and a manifest
		s.failAfter = fail
		if err := store.PutLargeState(ctx, s, "k", randomBytes(4*store.StatePartSize-1, uint64(10+fail))); err == nil {
			t.Fatalf("write failing at put %d reported success", fail)
		}
		got, err := store.GetLargeState(ctx, s, "k")
		if err != nil || !bytes.Equal(got, old) {
			t.Fatalf("after a write stopped at part %d: %d bytes, %v; want the previous value", fail, len(got), err)
		}
	}
	s.failAfter = 0
	nv := randomBytes(100, 99)
	if err := store.PutLargeState(ctx, s, "k", nv); err != nil {
		t.Fatal(err)
	}
	if got, err := store.GetLargeState(ctx, s, "k"); err != nil || !bytes.Equal(got, nv) {
		t.Fatalf("after the interrupted writes a new value reads back as %d bytes, %v", len(got), err)
	}
}

func TestLargeStateReadsAPlainValueAndRefusesDamagedParts(t *testing.T) {
	ctx := context.Background()
	s := &memState{m: map[string][]byte{}}
	if _, err := store.GetLargeState(ctx, s, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing key: %v, want ErrNotFound", err)
	}
	// A value an older daemon wrote with PutState is read as it is, and replaced by parts.
	plain := []byte(`{"version":1,"rules":{"pipewarden.state.parts/v1":{}}}`)
	s.m["k"] = plain
	if got, err := store.GetLargeState(ctx, s, "k"); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("plain value read as %q, %v", got, err)
	}
	v := randomBytes(store.StatePartSize+10, 3)
	if err := store.PutLargeState(ctx, s, "k", v); err != nil {
		t.Fatal(err)
	}
	for _, damage := range []func(){
		func() { s.m["k.a.000001"] = append(s.m["k.a.000001"], 'x') },
		func() { s.m["k.a.000001"][0] ^= 1 },
		func() { delete(s.m, "k.a.000001") },
		func() {
			s.m["k"] = []byte(`{"format":"pipewarden.state.parts/v1","gen":"a","parts":1000000,"bytes":10}`)
		},
		func() { s.m["k"] = []byte(`{"format":"pipewarden.state.parts/v1","gen":"../x","parts":1,"bytes":10}`) },
	} {
		saved := map[string][]byte{}
		for k, b := range s.m {
			saved[k] = bytes.Clone(b)
		}
		damage()
		if got, err := store.GetLargeState(ctx, s, "k"); err == nil {
			t.Errorf("damaged parts read back without error (%d bytes)", len(got))
		}
		s.m = saved
	}
	if got, err := store.GetLargeState(ctx, s, "k"); err != nil || !bytes.Equal(got, v) {
		t.Fatalf("undamaged: %d bytes, %v", len(got), err)
	}
}
