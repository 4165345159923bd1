package signing

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sync"
)

// hashItems hashes every item with a bounded pool of workers, each streaming through its own
// buffer, so memory stays at Workers x BufferSize whatever the file sizes. Items that cannot be
// read become problems; only cancellation is an error.
func hashItems(ctx context.Context, items []item, o Options) ([]Resource, []PathProblem, error) {
	workers := o.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	bufSize := o.BufferSize
	if bufSize <= 0 {
		bufSize = 1 << 20
	}
	algo := HashSHA256
	if o.Method == MethodShards {
		algo = ShardAlgorithm(o.ShardSize)
	}

	// Largest first, so one big file does not start last and leave the other workers idle.
	order := make([]int, len(items))
	sizes := make([]int64, len(items))
	for i, it := range items {
		order[i] = i
		sizes[i] = it.end - it.start
		if it.end < 0 {
			if fi, err := os.Stat(it.abs); err == nil {
				sizes[i] = fi.Size()
			}
		}
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(sizes[b], sizes[a]) })

	digests := make([][]byte, len(items))
	errs := make([]error, len(items))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, max(len(items), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, bufSize)
			for i := range next {
				digests[i], errs[i] = hashItem(ctx, items[i], buf)
			}
		}()
	}
feed:
	for _, i := range order {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}

	res := make([]Resource, 0, len(items))
	var problems []PathProblem
	bad := map[string]bool{}
	for i, it := range items {
		if errs[i] != nil {
			if !bad[it.file] {
				bad[it.file] = true
				problems = append(problems, PathProblem{Name: it.file, Reason: "unreadable file", Err: errs[i]})
			}
			continue
		}
		res = append(res, Resource{Name: it.name, Algorithm: algo, Digest: digests[i]})
	}
	// A file with one unreadable shard is not half-reported.
	if len(bad) > 0 {
		res = slices.DeleteFunc(res, func(r Resource) bool { return bad[FileOf(r, o.Method)] })
	}
	return res, problems, nil
}

var errShortShard = errors.New("file shrank while it was hashed")

func hashItem(ctx context.Context, it item, buf []byte) ([]byte, error) {
	f, err := os.Open(it.abs)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	var r io.Reader = f
	want := int64(-1)
	if it.end >= 0 {
		want = it.end - it.start
		r = io.NewSectionReader(f, it.start, want)
	}
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		k, err := r.Read(buf)
		h.Write(buf[:k])
		n += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read at offset %d: %w", it.start+n, err)
		}
	}
	if want >= 0 && n != want {
		return nil, errShortShard
	}
	return h.Sum(nil), nil
}
