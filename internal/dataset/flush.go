package dataset

import "sync"

// The numeric columns' KS counters and histograms are filled column by column, a block of rows
// at a time, on a goroutine of their own: one column's reference and counters stay in cache
// while its block is counted (counting value by value across 20 columns missed the cache on
// every value), and the counting overlaps the parsing of the next block.

const blockRows = 4096

// block holds, per column of the checker, the numeric values of up to blockRows rows of a.
type block struct {
	a    *acc
	vals [][]float64
}

type flusher struct {
	jobs    chan *block
	free    chan *block
	wg      sync.WaitGroup
	running bool
}

func (c *checker) startFlusher() {
	f := &c.flush
	f.jobs, f.free, f.running = make(chan *block, 2), make(chan *block, 4), true
	f.wg.Go(func() {
		for b := range f.jobs {
			c.count(b)
			select {
			case f.free <- b:
			default:
			}
		}
	})
}

// stopFlusher waits until every submitted block is counted; it may be called more than once.
func (c *checker) stopFlusher() {
	if f := &c.flush; f.running {
		f.running = false
		close(f.jobs)
		f.wg.Wait()
	}
}

func (c *checker) getBlock(a *acc) *block {
	select {
	case b := <-c.flush.free:
		b.a = a
		return b
	default:
	}
	b := &block{a: a, vals: make([][]float64, len(c.refs))}
	for i, r := range c.refs {
		if r.numeric {
			b.vals[i] = make([]float64, 0, blockRows)
		}
	}
	return b
}

// submit hands a's pending values to the flusher.
func (c *checker) submit(a *acc) {
	if a.pending == 0 {
		return
	}
	c.flush.jobs <- a.cur
	a.cur, a.pending = c.getBlock(a), 0
}

func (c *checker) count(b *block) {
	for i, vs := range b.vals {
		if len(vs) == 0 {
			continue
		}
		ca := &b.a.cols[i]
		edges := c.refs[i].col.Numeric.Edges
		for _, v := range vs {
			ca.ks.Add(v)
			ca.hist[histBin(edges, v)]++
		}
		b.vals[i] = vs[:0]
	}
}
