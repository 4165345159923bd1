package bus_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pipewarden/pipewarden/internal/bus"
)

func TestFanOutAndDrain(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := bus.New[int](bus.Options{Name: "test", QueueSize: 100, Registerer: reg})
	var mu sync.Mutex
	got := map[string][]int{}
	for _, name := range []string{"a", "b"} {
		b.Subscribe(name, func(_ context.Context, msgs []int) {
			mu.Lock()
			got[name] = append(got[name], msgs...)
			mu.Unlock()
		})
	}
	b.Start(context.Background())
	for i := 0; i < 10; i++ {
		r, err := b.Reserve(2)
		if err != nil {
			t.Fatal(err)
		}
		r.Publish([]int{2 * i, 2*i + 1})
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b"} {
		if len(got[name]) != 20 {
			t.Errorf("subscriber %s got %d messages, want 20 (Close must drain)", name, len(got[name]))
		}
		for i, v := range got[name] {
			if v != i {
				t.Fatalf("subscriber %s: order broken at %d: %v", name, i, got[name])
			}
		}
	}
	if _, err := b.Reserve(1); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("Reserve after Close = %v, want ErrClosed", err)
	}
}

func TestBackpressureInsteadOfDrop(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := bus.New[int](bus.Options{Name: "test", QueueSize: 10, Registerer: reg})
	release := make(chan struct{})
	var handled int
	var mu sync.Mutex
	b.Subscribe("slow", func(_ context.Context, msgs []int) {
		<-release
		mu.Lock()
		handled += len(msgs)
		mu.Unlock()
	})
	b.Start(context.Background())
	accepted := 0
	refused := 0
	for i := 0; i < 10; i++ {
		r, err := b.Reserve(3)
		if errors.Is(err, bus.ErrFull) {
			refused++
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		r.Publish([]int{1, 2, 3})
		accepted += 3
	}
	if accepted != 9 || refused != 7 {
		t.Fatalf("accepted %d refused %d; want 9 accepted (queue of 10) and 7 refused", accepted, refused)
	}
	if d := b.Depth()["slow"]; d != 9 {
		t.Errorf("depth = %d, want 9", d)
	}
	if v := testutil.ToFloat64(mustCounter(t, reg, "pipewarden_bus_refused_total")); v != 7 {
		t.Errorf("refused metric = %v, want 7", v)
	}
	close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if handled != accepted {
		t.Errorf("handled %d, accepted %d: an accepted message was lost", handled, accepted)
	}
}

func TestCancelAndPartialPublishReturnRoom(t *testing.T) {
	b := bus.New[int](bus.Options{QueueSize: 5})
	block := make(chan struct{})
	b.Subscribe("s", func(context.Context, []int) { <-block })
	b.Start(context.Background())
	r, _ := b.Reserve(5)
	r.Cancel()
	r2, err := b.Reserve(5)
	if err != nil {
		t.Fatalf("room not returned by Cancel: %v", err)
	}
	r2.Publish([]int{1, 2}) // fewer than reserved
	if d := b.Depth()["s"]; d != 2 {
		t.Errorf("depth = %d, want 2", d)
	}
	close(block)
	b.Close(context.Background())
}

func TestHandlerPanicIsContained(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := bus.New[int](bus.Options{Name: "p", QueueSize: 10, Registerer: reg})
	// Messages, not calls, are counted: publishes waiting together may come in one call.
	var handled []int
	b.Subscribe("bad", func(_ context.Context, msgs []int) {
		if msgs[0] == 0 {
			panic("boom")
		}
		handled = append(handled, msgs...)
	})
	b.Start(context.Background())
	for i := 0; i < 3; i++ {
		r, _ := b.Reserve(1)
		r.Publish([]int{i})
	}
	b.Close(context.Background())
	if fmt.Sprint(handled) != "[1 2]" {
		t.Errorf("handled %v after a panic, want [1 2]", handled)
	}
	if v := testutil.ToFloat64(mustCounter(t, reg, "pipewarden_bus_handler_panics_total")); v != 1 {
		t.Errorf("panics metric = %v", v)
	}
}

func mustCounter(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var sum float64
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
			c.Add(sum)
			return c
		}
	}
	t.Fatalf("metric %s not registered", name)
	return nil
}

// Publishes waiting behind a slow handler reach it in one call, without touching the
// publishers' slices; a panic on a coalesced batch loses only the publish that caused it.
func TestSlowSubscriberGetsCoalescedBatches(t *testing.T) {
	b := bus.New[int](bus.Options{Name: "c", QueueSize: 100, Registerer: prometheus.NewRegistry()})
	entered, release := make(chan struct{}), make(chan struct{})
	var calls [][]int
	var handled []int
	b.Subscribe("slow", func(_ context.Context, msgs []int) {
		calls = append(calls, append([]int(nil), msgs...))
		if msgs[0] == -1 {
			close(entered)
			<-release
			return
		}
		for _, m := range msgs {
			if m == 0 {
				panic("zero")
			}
		}
		handled = append(handled, msgs...)
	})
	b.Start(context.Background())
	pub := func(msgs ...int) []int {
		r, err := b.Reserve(len(msgs))
		if err != nil {
			t.Fatal(err)
		}
		r.Publish(msgs)
		return msgs
	}
	pub(-1)
	<-entered
	a := make([]int, 2, 10) // spare capacity a careless append would write into
	a[0], a[1] = 1, 2
	pub(a...)
	pub(3)
	pub(4, 5)
	close(release)
	b.Close(context.Background())
	if len(calls) != 2 || fmt.Sprint(calls[1]) != "[1 2 3 4 5]" {
		t.Fatalf("calls = %v, want the three waiting publishes in one", calls)
	}
	if a[:3][2] != 0 {
		t.Fatalf("the publisher's slice was written: %v", a[:3])
	}

	// With a poisoned publish among them.
	b = bus.New[int](bus.Options{Name: "d", QueueSize: 100, Registerer: prometheus.NewRegistry()})
	entered, release, calls, handled = make(chan struct{}), make(chan struct{}), nil, nil
	b.Subscribe("slow", func(_ context.Context, msgs []int) {
		if msgs[0] == -1 {
			close(entered)
			<-release
			return
		}
		for _, m := range msgs {
			if m == 0 {
				panic("zero")
			}
		}
		handled = append(handled, msgs...)
	})
	b.Start(context.Background())
	pub(-1)
	<-entered
	pub(1)
	pub(0)
	pub(2)
	close(release)
	b.Close(context.Background())
	if fmt.Sprint(handled) != "[1 2]" {
		t.Fatalf("handled %v after a panic in a coalesced batch, want [1 2]", handled)
	}
}

// With ReuseBatches, one subscriber's merged batches share a buffer across calls: every
// message still arrives once and in order, the publishers' slices are never written, and no
// call sees another call's messages.
func TestReuseBatches(t *testing.T) {
	b := bus.New[int](bus.Options{Name: "r", QueueSize: 100000, Registerer: prometheus.NewRegistry(), ReuseBatches: true})
	gate := make(chan struct{}, 1)
	var got []int
	var merged int
	var prevPtr *int
	reused := false
	b.Subscribe("s", func(_ context.Context, msgs []int) {
		<-gate // hold each call until the test lets it go, so publishes pile up behind it
		if len(msgs) > 1 {
			merged++
			if prevPtr != nil && &msgs[0] == prevPtr {
				reused = true
			}
			prevPtr = &msgs[0]
		}
		got = append(got, msgs...)
	})
	b.Start(context.Background())
	var pubs [][]int
	n := 0
	for round := 0; round < 50; round++ {
		for k := 0; k < 5; k++ {
			msgs := make([]int, 3, 8)
			for i := range msgs {
				n++
				msgs[i] = n
			}
			r, err := b.Reserve(len(msgs))
			if err != nil {
				t.Fatal(err)
			}
			r.Publish(msgs)
			pubs = append(pubs, msgs)
		}
		gate <- struct{}{}
	}
	for range 200 {
		select {
		case gate <- struct{}{}:
		default:
		}
	}
	close(gate)
	b.Close(context.Background())
	if len(got) != n {
		t.Fatalf("handled %d messages, want %d", len(got), n)
	}
	for i, m := range got {
		if m != i+1 {
			t.Fatalf("message %d is %d: order or content broken", i, m)
		}
	}
	for _, p := range pubs {
		if p[:4][3] != 0 {
			t.Fatalf("a publisher's slice was written: %v", p[:4])
		}
	}
	if merged < 2 || !reused {
		t.Fatalf("merged %d batches, buffer reused %v: the test did not exercise reuse", merged, reused)
	}
}

// A gathering subscriber that keeps up gets the publishes of an interval in one call.
func TestGatherBatchesWhileKeepingUp(t *testing.T) {
	const every = time.Second
	b := bus.New[int](bus.Options{Name: "test", QueueSize: 100})
	var mu sync.Mutex
	var calls [][]int
	var at []time.Time
	b.Subscribe("gathered", func(_ context.Context, msgs []int) {
		mu.Lock()
		calls = append(calls, append([]int(nil), msgs...))
		at = append(at, time.Now())
		mu.Unlock()
	}, bus.Gather(every))
	b.Start(context.Background())
	publish := func(v int) {
		r, err := b.Reserve(1)
		if err != nil {
			t.Fatal(err)
		}
		r.Publish([]int{v})
	}
	publish(0)
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(calls) == 1 })
	for v := 1; v <= 5; v++ {
		publish(v)
	}
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(calls) == 2 })
	if gap := at[1].Sub(at[0]); gap < every*9/10 {
		t.Errorf("second call came %v after the first: the interval (%v) was not waited out", gap, every)
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(calls) != "[[0] [1 2 3 4 5]]" {
		t.Errorf("calls = %v, want [[0] [1 2 3 4 5]]: the five publishes of one interval in one call", calls)
	}
}

// A gathering subscriber that is behind is not held back, and Close does not wait out the
// interval.
func TestGatherDoesNotHoldBackABacklog(t *testing.T) {
	n := 3*bus.MaxCoalesce + 1
	b := bus.New[int](bus.Options{Name: "test", QueueSize: n + 10})
	var mu sync.Mutex
	var got []int
	calls := 0
	b.Subscribe("gathered", func(_ context.Context, msgs []int) {
		mu.Lock()
		got = append(got, msgs...)
		calls++
		mu.Unlock()
	}, bus.Gather(time.Hour))
	for v := 0; v < n; v++ { // queued before Start: a backlog of single-message publishes
		r, err := b.Reserve(1)
		if err != nil {
			t.Fatal(err)
		}
		r.Publish([]int{v})
	}
	b.Start(context.Background())
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == n })
	mu.Lock()
	if calls != 4 {
		t.Errorf("backlog of %d handled in %d calls, want 4 (three full batches, then the rest at once)", n, calls)
	}
	mu.Unlock()
	// Now caught up: the next publish waits for the interval, but Close hands it over at once.
	r, err := b.Reserve(1)
	if err != nil {
		t.Fatal(err)
	}
	r.Publish([]int{n})
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	if len(got) != n {
		t.Errorf("a publish after a small call was handled before the interval passed")
	}
	mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatalf("Close waited for the gathering interval: %v", err)
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("order broken at %d", i)
		}
	}
	if len(got) != n+1 {
		t.Errorf("after Close %d messages handled, want %d", len(got), n+1)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// CheckRoom refuses (and counts) exactly when no reservation could succeed.
func TestCheckRoom(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := bus.New[int](bus.Options{Name: "test", QueueSize: 2, Registerer: reg})
	release := make(chan struct{})
	b.Subscribe("slow", func(context.Context, []int) { <-release })
	b.Start(context.Background())
	if err := b.CheckRoom(); err != nil {
		t.Fatalf("empty queues: %v", err)
	}
	r, err := b.Reserve(1)
	if err != nil {
		t.Fatal(err)
	}
	r.Publish([]int{1})
	if err := b.CheckRoom(); err != nil {
		t.Fatalf("room for one more: %v", err)
	}
	r, _ = b.Reserve(1)
	r.Publish([]int{2})
	if err := b.CheckRoom(); !errors.Is(err, bus.ErrFull) {
		t.Fatalf("slow queue full: CheckRoom = %v, want ErrFull", err)
	}
	if got := testutil.ToFloat64(mustCounter(t, reg, "pipewarden_bus_refused_total")); got != 1 {
		t.Errorf("refusals counted: %v, want 1", got)
	}
	close(release)
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := b.CheckRoom(); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
}
