// Command gen writes a seeded numeric CSV for the data-check benchmark.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
)

func main() {
	rows := flag.Int("rows", 1000000, "rows")
	cols := flag.Int("cols", 20, "columns")
	seed := flag.Uint64("seed", 1, "seed")
	shift := flag.Float64("shift", 0, "mean shift of column f0, in sigmas")
	out := flag.String("out", "", "output file")
	flag.Parse()
	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	rng := rand.New(rand.NewPCG(*seed, 7))
	for c := 0; c < *cols; c++ {
		if c > 0 {
			w.WriteByte(',')
		}
		fmt.Fprintf(w, "f%d", c)
	}
	w.WriteByte('\n')
	buf := make([]byte, 0, 32)
	for r := 0; r < *rows; r++ {
		for c := 0; c < *cols; c++ {
			if c > 0 {
				w.WriteByte(',')
			}
			v := rng.NormFloat64()*float64(c+1) + float64(10*c)
			if c == 0 {
				v += *shift
			}
			buf = strconv.AppendFloat(buf[:0], v, 'f', 4, 64)
			w.Write(buf)
		}
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	f.Close()
}
