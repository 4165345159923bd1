package modelscan_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/pipewarden/pipewarden/internal/modelscan"
)

// manySmallObjects writes a protocol-4 pickle of n small dicts the way CPython's pickler lays
// them out (keys memoized once, then fetched with BINGET/LONG_BINGET).
func manySmallObjects(n int) []byte {
	var b bytes.Buffer
	memo := 0
	su := func(s string) {
		b.WriteByte(0x8c)
		b.WriteByte(byte(len(s)))
		b.WriteString(s)
		b.WriteByte(0x94)
		memo++
	}
	get := func(i int) {
		b.WriteByte('j')
		binary.Write(&b, binary.LittleEndian, uint32(i))
	}
	b.WriteString("\x80\x04]\x94")
	memo++
	keys := map[string]int{}
	key := func(k string) {
		if i, ok := keys[k]; ok {
			get(i)
			return
		}
		keys[k] = memo
		su(k)
	}
	for i := 0; i < n; i++ {
		if i%1000 == 0 {
			b.WriteByte('(')
		}
		b.WriteString("}\x94(")
		memo++
		key("id")
		b.WriteByte('J')
		binary.Write(&b, binary.LittleEndian, int32(i))
		key("name")
		su(fmt.Sprintf("item%07d", i))
		key("score")
		b.WriteByte('G')
		binary.Write(&b, binary.BigEndian, float64(i)/3)
		key("label")
		key("cat")
		b.WriteByte('u')
		if i%1000 == 999 || i == n-1 {
			b.WriteByte('e')
		}
	}
	b.WriteByte('.')
	return b.Bytes()
}

// BenchmarkPickleWalk measures opcode walking (MB/s) on a pickle of many small objects.
func BenchmarkPickleWalk(b *testing.B) {
	data := manySmallObjects(500_000)
	s := newScanner(b)
	benchWalk(b, s, "bench.pkl", data)
}

// benchWalk scans data b.N times and reports, besides the wall-clock figures, MB per CPU
// second (cpu-MB/s), the figure that means something on a shared machine.
func benchWalk(b *testing.B, s *modelscan.Scanner, name string, data []byte) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	runtime.GC() // the garbage of generating data is not the walker's
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		r := s.ScanReader(context.Background(), name, bytes.NewReader(data), int64(len(data)))
		if r.Outcome != modelscan.Clean {
			b.Fatalf("%s", dump(r))
		}
	}
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(len(data))*float64(b.N)/1e6/cpu.Seconds(), "cpu-MB/s")
	}
}

// BenchmarkTensorZip measures a PyTorch ZIP of stored tensors: storages are bounds-checked,
// not read, so the figure is far above disk speed.
func BenchmarkTensorZip(b *testing.B) {
	path := filepath.Join(b.TempDir(), "tensors.pt")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	zw := zip.NewWriter(f)
	const n, size = 16, 16 << 20
	var pkl bytes.Buffer
	pkl.WriteString("\x80\x02ccollections\nOrderedDict\n)R(")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&pkl, "X\x02\x00\x00\x00t%dctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX%s%dX\x03\x00\x00\x00cpuJ%stQK\x00J%s\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtR",
			i%10, le32(len(fmt.Sprint(i))), i, le32(size/4), le32(size/4))
	}
	pkl.WriteString("u.")
	w, _ := zw.CreateHeader(&zip.FileHeader{Name: "archive/data.pkl", Method: zip.Store})
	w.Write(pkl.Bytes())
	block := bytes.Repeat([]byte{1, 2, 3, 4}, 1<<18)
	for i := 0; i < n; i++ {
		w, _ := zw.CreateHeader(&zip.FileHeader{Name: fmt.Sprintf("archive/data/%d", i), Method: zip.Store})
		for k := 0; k < size/len(block); k++ {
			w.Write(block)
		}
	}
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	st, _ := f.Stat()
	f.Close()
	s := newScanner(b)
	b.SetBytes(st.Size())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := scanOne(b, s, path)
		if r.Outcome != modelscan.Clean {
			b.Fatalf("%s", dump(r))
		}
	}
}

func le32(n int) string {
	var x [4]byte
	binary.LittleEndian.PutUint32(x[:], uint32(n))
	return string(x[:])
}

// modelPickle writes the data.pkl that torch.save writes for a state_dict of n float32 tensors
// (protocol 2, CPython's memo numbering): per tensor a key string, a persistent-id tuple
// ('storage', FloatStorage, key, 'cpu', numel), shape and stride tuples and the metadata
// OrderedDict, with repeated globals and strings fetched back through BINGET/LONG_BINGET.
func modelPickle(n int) []byte {
	var b bytes.Buffer
	memo := 0
	put := func() int {
		if memo < 256 {
			b.WriteByte('q')
			b.WriteByte(byte(memo))
		} else {
			b.WriteByte('r')
			binary.Write(&b, binary.LittleEndian, uint32(memo))
		}
		memo++
		return memo - 1
	}
	get := func(i int) {
		if i < 256 {
			b.WriteByte('h')
			b.WriteByte(byte(i))
			return
		}
		b.WriteByte('j')
		binary.Write(&b, binary.LittleEndian, uint32(i))
	}
	str := func(s string) int {
		b.WriteByte('X')
		binary.Write(&b, binary.LittleEndian, uint32(len(s)))
		b.WriteString(s)
		return put()
	}
	known := map[string]int{}
	once := func(key string, write func()) {
		if i, ok := known[key]; ok {
			get(i)
			return
		}
		write()
		known[key] = put()
	}
	b.WriteString("\x80\x02ccollections\nOrderedDict\n")
	known["OrderedDict"] = put()
	b.WriteString(")R")
	put()
	b.WriteByte('(')
	for i := 0; i < n; i++ {
		str(fmt.Sprintf("encoder.layers.%d.block%d.weight", i/8, i%8))
		once("rebuild", func() { b.WriteString("ctorch._utils\n_rebuild_tensor_v2\n") })
		b.WriteString("((")
		once("storage", func() { b.WriteString("X\x07\x00\x00\x00storage") })
		once("FloatStorage", func() { b.WriteString("ctorch\nFloatStorage\n") })
		str(fmt.Sprint(i))
		once("cpu", func() { b.WriteString("X\x03\x00\x00\x00cpu") })
		numel := 64 * (i%16 + 1)
		b.WriteByte('M')
		binary.Write(&b, binary.LittleEndian, uint16(numel))
		b.WriteByte('t')
		put()
		b.WriteString("QK\x00K\x40M")
		binary.Write(&b, binary.LittleEndian, uint16(numel/64))
		b.WriteByte(0x86)
		put()
		b.WriteString("M")
		binary.Write(&b, binary.LittleEndian, uint16(numel/64))
		b.WriteString("K\x01\x86")
		put()
		b.WriteByte(0x89)
		get(known["OrderedDict"])
		b.WriteString(")R")
		put()
		b.WriteByte('t')
		put()
		b.WriteByte('R')
		put()
		if i%1000 == 999 {
			b.WriteString("u(")
		}
	}
	b.WriteString("u}X\t\x00\x00\x00_metadatah\x00)RX\x00\x00\x00\x00}X\x07\x00\x00\x00versionK\x01sssb.")
	return b.Bytes()
}

// BenchmarkPickleWalkModel measures opcode walking on a PyTorch state_dict pickle of tensors'
// storage references (the data.pkl of a ZIP checkpoint).
func BenchmarkPickleWalkModel(b *testing.B) {
	benchWalk(b, newScanner(b), "data.pkl", modelPickle(200_000))
}
