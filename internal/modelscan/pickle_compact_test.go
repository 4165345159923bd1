package modelscan

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// pk writes pickle opcodes for the compaction tests.
type pk struct{ bytes.Buffer }

func (p *pk) op(b ...byte) *pk { p.Write(b); return p }

func (p *pk) str(s string) *pk {
	p.WriteByte(opBinUnicode)
	binary.Write(&p.Buffer, binary.LittleEndian, uint32(len(s)))
	p.WriteString(s)
	return p
}

func (p *pk) global(mod, name string) *pk {
	fmt.Fprintf(&p.Buffer, "c%s\n%s\n", mod, name)
	return p
}

func (p *pk) put(i int) *pk {
	p.WriteByte(opLongBinPut)
	binary.Write(&p.Buffer, binary.LittleEndian, uint32(i))
	return p
}

func (p *pk) get(i int) *pk {
	p.WriteByte(opLongBinGet)
	binary.Write(&p.Buffer, binary.LittleEndian, uint32(i))
	return p
}

// garbage allocates containers and texts nobody keeps: about n*100 opcodes, and the walker
// looks at its heap every 4096 opcodes.
func (p *pk) garbage(n int) *pk {
	for i := 0; i < 10*n; i++ {
		p.op(opMark, opBinInt1, 1, opBinInt1, 2, opBinInt1, 3, opTuple, opPop)
		if i%10 == 0 {
			p.str("garbage_text_0123456789").op(opPop)
		}
	}
	return p
}

// tinyHeap compacts every few dozen items, with chunks of 64 items and 256 text bytes.
var tinyHeap = Limits{MaxInMemory: 4096}

type walkResult struct {
	v        value
	pids     []value
	findings []string
}

func walkFor(t *testing.T, lim Limits, data []byte, capture bool) (walkResult, [3]int) {
	t.Helper()
	s, err := New(Options{Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	j := s.newJob(context.Background(), "t.pkl")
	w := newPickleWalker(j, newByteReader(bytes.NewReader(data), int64(len(data))), 0)
	var r walkResult
	w.persist = &r.pids
	w.capture = capture
	r.v, err = w.walkOne()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range j.order {
		f := j.byKey[k]
		r.findings = append(r.findings, fmt.Sprint(f.Rule, f.Title, f.Evidence))
	}
	return r, w.compactions
}

// TestCompactionKeepsValues walks pickles whose values outlive many minor and full
// compactions (memoized containers of imports, persistent ids, a BUILD state dict written
// after it became old, a captured list grown across compactions and chunks, texts longer
// than a chunk) and checks that the walk sees what a walk that never compacts sees.
func TestCompactionKeepsValues(t *testing.T) {
	memoTuples := func() []byte {
		var p pk
		p.op(opProto, 2, opMark)
		for i := 0; i < 300; i++ {
			p.global("torch", "FloatStorage").str(fmt.Sprintf("key%d", i)).op(opBinInt2, byte(i), 0, opTuple3).put(i).op(opPop)
			// A persistent id nothing else refers to.
			p.str("storage").global("torch", "HalfStorage").str(fmt.Sprintf("pid%d", i)).op(opTuple3, opBinPersID, opPop)
			p.garbage(3)
		}
		for i := 0; i < 300; i++ {
			p.get(i).op(opBinPersID, opPop)
			if i%7 == 0 {
				p.get(i) // kept on the stack, in the result tuple
			}
		}
		return p.op(opTuple, opStop).Bytes()
	}
	state := func() []byte {
		var p pk
		p.op(opProto, 2).global("mod", "Cls").op(opEmptyDict)
		for i := 0; i < 8; i++ {
			p.garbage(100)
			for k := 0; k < 20; k++ { // survivors, for the old generation to grow
				p.global("torch", "FloatStorage").str("x").op(opTuple2).put(20*i + k).op(opPop)
			}
			p.str(fmt.Sprintf("attr%d", i)).global("builtins", "getattr").op(opSetItem)
		}
		p.op(opBuild, opPop)
		p.global("mod", "Cls.attr5").global("posix", "environ").str("system").op(opTuple2, opReduce)
		p.op(opPop, opMark)
		for i := 0; i < 8; i++ {
			p.global("mod", fmt.Sprintf("Cls.attr%d", i))
		}
		return p.op(opTuple, opStop).Bytes()
	}
	captured := func() []byte {
		var p pk
		p.op(opProto, 2, opEmptyList)
		for i := 0; i < 200; i++ {
			p.str(fmt.Sprintf("storage%d", i)).op(opAppend)
			if i%10 == 0 {
				p.garbage(50)
			}
		}
		return p.op(opStop).Bytes()
	}
	longNames := func() []byte {
		var p pk
		p.op(opProto, 2).global("builtins", "getattr").put(0).op(opPop).global("pkg", "mod")
		for i := 0; i < 60; i++ {
			p.put(1).op(opPop).get(0).get(1).str(fmt.Sprintf("attribute_%02d", i)).op(opTuple2, opReduce)
			p.garbage(20)
		}
		return p.op(opStop).Bytes()
	}
	var total [3]int
	defer func() {
		if total[0] < 10 || total[1] < 10 || total[2] < 10 {
			t.Errorf("compactions (minor, full, moving texts) = %v, want more of each", total)
		}
	}()
	for _, c := range []struct {
		name    string
		data    []byte
		capture bool
	}{
		{"memoized tuples and persistent ids", memoTuples(), false},
		{"state dict written while old", state(), false},
		{"captured list", captured(), true},
		{"texts longer than a chunk", longNames(), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			want, n := walkFor(t, Limits{}, c.data, c.capture)
			if n != [3]int{} {
				t.Fatalf("the reference walk compacted %v times", n)
			}
			got, n := walkFor(t, tinyHeap, c.data, c.capture)
			if n[0]+n[1] < 3 {
				t.Errorf("compactions (minor, full, moving texts) = %v, want several", n)
			}
			for i := range n {
				total[i] += n[i]
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("with a tiny heap:\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

// TestOldGenerationBounded: what the old generation drops (memo keys overwritten, the stack's
// containers a minor compaction moved) is collected by full compactions long before the
// old generation reaches oldLimit.
func TestOldGenerationBounded(t *testing.T) {
	var p pk
	p.op(opProto, 2).global("torch", "FloatStorage").put(100).op(opPop)
	for i := 0; i < 20000; i++ {
		// Memoized containers of an import, each dropped ten iterations later.
		p.get(100).op(opBinInt1, 1, opTuple2).put(i % 10).op(opPop)
		if i%2000 == 0 { // the stack's containers, moved while it holds them
			p.op(opMark)
			for k := 0; k < 30; k++ {
				p.op(opBinInt1, 1, opBinInt1, 2, opTuple2)
			}
			p.garbage(50).op(opTuple, opPop)
		}
	}
	data := p.op(opNone, opStop).Bytes()
	s, err := New(Options{Limits: Limits{MaxInMemory: 64 << 10}}) // heapBase 256
	if err != nil {
		t.Fatal(err)
	}
	w := newPickleWalker(s.newJob(context.Background(), "t.pkl"), newByteReader(bytes.NewReader(data), int64(len(data))), 0)
	if _, err := w.walkOne(); err != nil {
		t.Fatal(err)
	}
	base := heapBase(s.lim)
	// Its live part is a few dozen units; oldLimit is 4*base.
	if w.compactions[1] < 5 || w.maxOld > 2*base {
		t.Errorf("%d full compactions, old generation up to %d units, want several and at most %d", w.compactions[1], w.maxOld, 2*base)
	}
}

func TestArena(t *testing.T) {
	a := arena[int]{shift: 3} // chunks of 8
	type alloc struct {
		k   int
		off uint32
	}
	for round := 0; round < 2; round++ {
		var got []alloc
		for _, k := range []int{3, 5, 1, 8, 0, 20, 2, 9, 7} {
			off, s, ok := a.alloc(k)
			if !ok || len(s) != k {
				t.Fatalf("alloc(%d) = %d, %d items, %v", k, off, len(s), ok)
			}
			for i := range s {
				s[i] = int(off) + i
			}
			got = append(got, alloc{k, off})
		}
		// 3 and 5 fill chunk 0; 1 starts chunk 1, 8 does not fit after it; 0 takes an offset;
		// 20 gets a chunk of its own at 32 (offsets of chunks 4-6), 2 fits after it in chunk 6,
		// 9 gets one at 56 (chunks 7-8), 7 fits after it in chunk 8.
		want := []alloc{{3, 0}, {5, 3}, {1, 8}, {8, 16}, {0, 24}, {20, 32}, {2, 52}, {9, 56}, {7, 65}}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d: %v, want %v", round, got, want)
		}
		for _, g := range got {
			for i, x := range a.at(g.off, uint32(g.k)) {
				if x != int(g.off)+i {
					t.Fatalf("round %d: at(%d)[%d] = %d", round, g.off, i, x)
				}
			}
		}
		a.reset()
	}
	a.n = maxArena - 4
	if _, _, ok := a.alloc(8); ok {
		t.Error("alloc past maxArena succeeded")
	}
}

// TestMemoNameCacheReset: a str the memo keeps without looking at its text again (the last
// name pushed) must not be mistaken for one at the same place in the next pickle's heap.
func TestMemoNameCacheReset(t *testing.T) {
	first := []byte("\x80\x04\x8c\x03abc\x94.")
	second := []byte("\x80\x04Va-b\n\x940h\x00\x8c\x01x\x93.")
	for _, stream := range [][]byte{second, append(first, second...)} {
		s, err := New(Options{})
		if err != nil {
			t.Fatal(err)
		}
		j := s.newJob(context.Background(), "t.pkl")
		w := newPickleWalker(j, newByteReader(bytes.NewReader(stream), int64(len(stream))), 0)
		for w.r.remaining() > 0 {
			if _, err := w.walkOne(); err != nil {
				t.Fatal(err)
			}
		}
		var titles []string
		for _, k := range j.order {
			titles = append(titles, j.byKey[k].Title)
		}
		if !reflect.DeepEqual(titles, []string{"unresolved import"}) {
			t.Errorf("%q: findings %q, want the unresolved import of a str the memo does not keep", stream, titles)
		}
	}
}

func TestKindSets(t *testing.T) {
	for k := range 256 {
		if got := compKinds>>k&1 != 0; got != hasComp(vkind(k)) {
			t.Errorf("kind %d: compKinds says %v", k, got)
		}
		if got := refKinds>>k&1 != 0; got != refItem(mkCell(vkind(k), 0)) {
			t.Errorf("kind %d: refKinds says %v", k, got)
		}
	}
}

// TestWalkerMemoryReused: a walker that reuses the memory a previous scan's walker left sees
// nothing of that scan (memo keys, containers, texts, overrides, opcode count).
func TestWalkerMemoryReused(t *testing.T) {
	var first pk
	first.op(opProto, 2).global("mod", "Cls").op(opEmptyDict).str("attr").global("os", "system")
	first.op(opSetItem, opBuild, opPop, opMark)
	for i := 0; i < 3000; i++ {
		first.global("os", "system").str(fmt.Sprintf("k%d", i)).op(opTuple2).put(i)
		first.garbage(1)
	}
	first.op(opTuple, opStop)
	// An import the first pickle overrode; a list, a dict and a call of what the memo holds,
	// then a get of a key the first pickle set.
	second := []byte("\x80\x02cmod\nCls.attr\n0]q\x00}q\x01h\x00h\x01\x86q\x02cbuiltins\ngetattr\nq\x03h\x02R0h\x05.")
	scan := func(s *Scanner, data []byte) string {
		r := s.ScanReader(context.Background(), "t.pkl", bytes.NewReader(data), int64(len(data)))
		out := string(r.Outcome)
		for _, f := range r.Findings {
			out += fmt.Sprint("; ", f.Rule, f.Title, f.Evidence)
		}
		return out
	}
	fresh, err := New(Options{Now: func() time.Time { return time.Unix(0, 0) }})
	if err != nil {
		t.Fatal(err)
	}
	want := scan(fresh, second)
	for _, lim := range []Limits{{}, tinyHeap, {MaxOpcodes: 30000}} {
		s, err := New(Options{Limits: lim, Now: func() time.Time { return time.Unix(0, 0) }})
		if err != nil {
			t.Fatal(err)
		}
		scan(s, first.Bytes())
		if got := scan(s, second); got != want {
			t.Errorf("after another scan: %s, want %s", got, want)
		}
	}
}
