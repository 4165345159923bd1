// Package storetest is the conformance suite that every store.Store implementation runs, so the
// embedded and scale-out stores behave the same.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/event"
	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/store"
)

// Opener returns a fresh, empty store whose clock is now; the suite closes it.
type Opener func(t *testing.T, now func() time.Time) store.Store

// Run runs every conformance test against stores made by open.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"AppendAndList", testAppendAndList},
		{"IdempotentAppend", testIdempotent},
		{"IdempotentLargeBatch", testIdempotentLarge},
		{"Pagination", testPagination},
		{"Filters", testFilters},
		{"FiltersManyCommits", testFiltersManyCommits},
		{"Assets", testAssets},
		{"Retention", testRetention},
		{"Findings", testFindings},
		{"Tokens", testTokens},
		{"State", testState},
		{"AlertsEmpty", testAlertsEmpty},
		{"BadCursor", testBadCursor},
		{"ConcurrentWriter", testConcurrentWriter},
		{"AlertsSaveGet", testAlertsSaveGet},
		{"AlertsOneOpenPerFingerprint", testAlertsOneOpenPerFingerprint},
		{"AlertsFeedback", testAlertsFeedback},
		{"Silences", testSilences},
		{"Outbox", testOutbox},
		{"Actions", testActions},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

var t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func mustOpen(t *testing.T, open Opener) (store.Store, *clock) {
	c := &clock{t: t0}
	s := open(t, c.now)
	t.Cleanup(func() { s.Close() })
	return s, c
}

// Ev builds a valid decoded event of a type with the example data.
func Ev(t testing.TB, id, typ, subject string, at time.Time) event.Event {
	t.Helper()
	data := event.Examples()[typ]
	body := fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"//test","type":%q,"subject":%q,"time":%q,"data":%s}`,
		id, typ, subject, at.Format(time.RFC3339Nano), data)
	evs, err := event.NewDecoder(event.Limits{}, nil).Decode([]byte(body))
	if err != nil {
		t.Fatalf("build event: %v", err)
	}
	return evs[0]
}

func listAll(t *testing.T, s store.Store, q store.EventQuery) []store.StoredEvent {
	t.Helper()
	var out []store.StoredEvent
	for i := 0; i < 10000; i++ {
		p, err := s.ListEvents(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Items...)
		if p.Next == "" {
			return out
		}
		q.Cursor = p.Next
	}
	t.Fatal("pagination does not end")
	return nil
}

func testAppendAndList(t *testing.T, open Opener) {
	s, _ := mustOpen(t, open)
	ctx := context.Background()
	evs := []event.Event{
		Ev(t, "a", "pipewarden.data.batch", "customers", t0),
		Ev(t, "b", "pipewarden.access.auth", "bob", t0.Add(time.Second)),
	}
	n, err := s.AppendEvents(ctx, evs)
	if err != nil || n != 2 {
		t.Fatalf("AppendEvents = %d, %v; want 2, nil", n, err)
	}
	got := listAll(t, s, store.EventQuery{})
	if len(got) != 2 || got[0].ID != "a" || got[1].ID != "b" {
		t.Fatalf("events in arrival order: got %+v", got)
	}
	if string(got[0].Event) != string(evs[0].Raw) {
		t.Errorf("stored raw event differs:\n got %s\nwant %s", got[0].Event, evs[0].Raw)
	}
	if got[0].Type != "pipewarden.data.batch" || got[0].Subject != "customers" || !got[0].Time.Equal(t0) || !got[0].ReceivedAt.Equal(t0) {
		t.Errorf("stored attributes wrong: %+v", got[0])
	}
}

func testIdempotent(t *testing.T, open Opener) {
	s, _ := mustOpen(t, open)
	ctx := context.Background()
	e := Ev(t, "same", "pipewarden.access.auth", "bob", t0)
	if n, err := s.AppendEvents(ctx, []event.Event{e}); err != nil || n != 1 {
		t.Fatalf("first append = %d, %v", n, err)
	}
	n, err := s.AppendEvents(ctx, []event.Event{e, Ev(t, "other", "pipewarden.access.auth", "bob", t0)})
	if err != nil || n != 1 {
		t.Fatalf("retry append = %d, %v; want 1 new", n, err)
	}
	if got := listAll(t, s, store.EventQuery{}); len(got) != 2 {
		t.Fatalf("got %d events, want 2", len(got))
	}
	a, err := s.ListAssets(ctx, store.AssetQuery{Kind: "principal"})
	if err != nil || len(a.Items) != 1 || a.Items[0].Events != 2 {
		t.Fatalf("a retried event must not count twice on its asset: %+v %v", a.Items, err)
	}
}

func testPagination(t *testing.T, open Opener) {
	s, _ := mustOpen(t, open)
	var evs []event.Event
	for i := 0; i < 25; i++ {
		evs = append(evs, Ev(t, fmt.Sprintf("e%02d", i), "pipewarden.access.auth", "bob", t0.Add(time.Duration(i)*time.Second)))
	}
	if _, err := s.AppendEvents(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	got := listAll(t, s, store.EventQuery{Limit: 7})
	if len(got) != 25 {
		t.Fatalf("paged through %d events, want 25", len(got))
	}
	for i, e := range got {
		if want := fmt.Sprintf("e%02d", i); e.ID != want {
			t.Fatalf("event %d = %s, want %s", i, e.ID, want)
		}
	}
	p, _ := s.ListEvents(context.Background(), store.EventQuery{Limit: 25})
	if p.Next != "" {
		t.Errorf("a page holding the last event must have no next cursor")
	}
}

func testFilters(t *testing.T, open Opener) {
	s, _ := mustOpen(t, open)
	evs := []event.Event{
		Ev(t, "1", "pipewarden.data.batch", "customers", t0),
		Ev(t, "2", "pipewarden.data.batch", "orders", t0.Add(time.Hour)),
		Ev(t, "3", "pipewarden.access.auth", "customers", t0.Add(2*time.Hour)),
	}
	if _, err := s.AppendEvents(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		q    store.EventQuery
		want []string
	}{
		{"type", store.EventQuery{Type: "pipewarden.data.batch"}, []string{"1", "2"}},
		{"subject", store.EventQuery{Subject: "customers"}, []string{"1", "3"}},
		{"since", store.EventQuery{Since: t0.Add(time.Hour)}, []string{"2", "3"}},
		{"until", store.EventQuery{Until: t0.Add(time.Hour)}, []string{"1"}},
		{"type and subject", store.EventQuery{Type: "pipewarden.data.batch", Subject: "customers"}, []string{"1"}},
		{"none", store.EventQuery{Type: "pipewarden.deps.change"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ids []string
			for _, e := range listAll(t, s, tc.q) {
				ids = append(ids, e.ID)
			}
			if fmt.Sprint(ids) != fmt.Sprint(tc.want) {
				t.Errorf("got %v, want %v", ids, tc.want)
			}
		})
	}
}

// testFiltersManyCommits checks type and subject filters, with and without time bounds, page
// by page, against the events themselves, over many commits of mixed events (and a retention
// pass that removes the oldest).
func testFiltersManyCommits(t *testing.T, open Opener) {
	s, c := mustOpen(t, open)
	ctx := context.Background()
	types := []string{"pipewarden.data.batch", "pipewarden.access.auth", "pipewarden.inference.request", "pipewarden.model.artifact"}
	subjects := []string{"a", "b", "c", "", "rare"}
	type ev struct {
		id, typ, subj string
		at            time.Time
	}
	var all []ev
	n := 0
	for commit := 0; commit < 40; commit++ {
		c.set(t0.Add(time.Duration(commit) * time.Minute))
		var evs []event.Event
		for k := 0; k < 1+(commit*7)%23; k++ {
			n++
			typ := types[(n*3+commit)%len(types)]
			subj := subjects[(n*7)%4]
			if n%97 == 0 {
				subj, typ = "rare", types[3]
			}
			at := t0.Add(time.Duration(n) * time.Second)
			evs = append(evs, Ev(t, fmt.Sprintf("m%04d", n), typ, subj, at))
			all = append(all, ev{fmt.Sprintf("m%04d", n), typ, subj, at})
		}
		if _, err := s.AppendEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
	}
	check := func(q store.EventQuery, from int) {
		t.Helper()
		var want []string
		for _, e := range all[from:] {
			if (q.Type == "" || e.typ == q.Type) && (q.Subject == "" || e.subj == q.Subject) &&
				(q.Since.IsZero() || !e.at.Before(q.Since)) && (q.Until.IsZero() || e.at.Before(q.Until)) {
				want = append(want, e.id)
			}
		}
		for _, size := range []int{1, 3, 50, 1000} {
			q.Limit = size
			var got []string
			for _, e := range listAll(t, s, q) {
				got = append(got, e.ID)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%+v: got %d %v, want %d %v", q, len(got), got, len(want), want)
			}
		}
	}
	queries := []store.EventQuery{{}}
	for _, typ := range append(types, "pipewarden.deps.change") {
		queries = append(queries, store.EventQuery{Type: typ})
		for _, subj := range subjects[:3] {
			queries = append(queries, store.EventQuery{Type: typ, Subject: subj})
		}
	}
	for _, subj := range append(subjects, "nobody") {
		if subj != "" {
			queries = append(queries, store.EventQuery{Subject: subj}, store.EventQuery{Subject: subj, Since: t0.Add(100 * time.Second), Until: t0.Add(300 * time.Second)})
		}
	}
	for _, q := range queries {
		check(q, 0)
	}
	// Retention removes the first ten commits' events.
	c.set(t0.Add(100 * time.Minute))
	if _, err := s.DeleteEventsBefore(ctx, t0.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	first := 0
	for k := 0; k < 10; k++ {
		first += 1 + (k*7)%23
	}
	for _, q := range queries {
		check(q, first)
	}
}

func testAssets(t *testing.T, open Opener) {
	s, _ := mustOpen(t, open)
	ctx := context.Background()
	if _, err := s.AppendEvents(ctx, []event.Event{
		Ev(t, "1", "pipewarden.inference.request", "", t0),
		Ev(t, "2", "pipewarden.inference.request", "", t0.Add(time.Minute)),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendEvents(ctx, []event.Event{Ev(t, "3", "pipewarden.deploy.change", "", t0.Add(2*time.Minute))}); err != nil {
		t.Fatal(err)
	}
	p, err := s.ListAssets(ctx, store.AssetQuery{})
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string]store.Asset{}
	for _, a := range p.Items {
		byKey[a.Kind+"/"+a.Name] = a
	}
	ep := byKey["endpoint/fraud-api"]
	if ep.Events != 3 || !ep.FirstSeen.Equal(t0) || !ep.LastSeen.Equal(t0.Add(2*time.Minute)) || ep.LastEventID != "3" {
		t.Errorf("endpoint asset = %+v", ep)
	}
	if c := byKey["client/key-3f9a"]; c.Events != 2 {
		t.Errorf("client asset = %+v", c)
	}
	if _, ok := byKey["principal/cd-bot"]; !ok {
		t.Errorf("deploy actor must be recorded as a principal: %v", byKey)
	}
	only, _ := s.ListAssets(ctx, store.AssetQuery{Kind: "client"})
	if len(only.Items) != 1 {
		t.Errorf("kind filter: %+v", only.Items)
	}
}

func testRetention(t *testing.T, open Opener) {
	s, c := mustOpen(t, open)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		c.set(t0.Add(time.Duration(i) * 24 * time.Hour))
		if _, err := s.AppendEvents(ctx, []event.Event{Ev(t, fmt.Sprint(i), "pipewarden.access.auth", "bob", t0)}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.DeleteEventsBefore(ctx, t0.Add(36*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("DeleteEventsBefore = %d, %v; want 2", n, err)
	}
	got := listAll(t, s, store.EventQuery{})
	if len(got) != 1 || got[0].ID != "2" {
		t.Fatalf("after retention: %+v", got)
	}
}

func testFindings(t *testing.T, open Opener) {
	s, _ := mustOpen(t, open)
	ctx := context.Background()
	fs := []finding.Finding{
		{Rule: "r.low", Severity: finding.Low, Title: "low", Subject: finding.Subject{Kind: "model", Name: "m1"}, Confidence: 0.5, EventIDs: []string{"e1"}},
		{Rule: "r.high", Severity: finding.High, Title: "high", Subject: finding.Subject{Kind: "model", Name: "m2"}, ATLAS: []string{"AML.T0018"}, Evidence: map[string]any{"digest": "x"}, Confidence: 1},
		{Rule: "r.high", Severity: finding.Critical, Title: "crit", Subject: finding.Subject{Kind: "model", Name: "m1"}, Confidence: 1},
	}
	if err := s.AddFindings(ctx, fs); err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		if f.ID == "" {
			t.Errorf("AddFindings must assign ids")
		}
	}
	all, err := s.ListFindings(ctx, store.FindingQuery{})
	if err != nil || len(all.Items) != 3 || all.Items[0].Title != "crit" {
		t.Fatalf("newest first: %+v %v", all.Items, err)
	}
	if all.Items[1].Evidence["digest"] != "x" || all.Items[1].ATLAS[0] != "AML.T0018" {
		t.Errorf("finding fields lost: %+v", all.Items[1])
	}
	tests := []struct {
		name string
		q    store.FindingQuery
		want int
	}{
		{"rule", store.FindingQuery{Rule: "r.high"}, 2},
		{"severity", store.FindingQuery{MinSeverity: finding.High}, 2},
		{"subject", store.FindingQuery{SubjectName: "m1"}, 2},
		{"limit", store.FindingQuery{Limit: 1}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := s.ListFindings(ctx, tc.q)
			if err != nil || len(p.Items) != tc.want {
				t.Errorf("got %d, %v; want %d", len(p.Items), err, tc.want)
			}
		})
	}
	p1, _ := s.ListFindings(ctx, store.FindingQuery{Limit: 2})
	p2, err := s.ListFindings(ctx, store.FindingQuery{Limit: 2, Cursor: p1.Next})
	if err != nil || p1.Next == "" || len(p2.Items) != 1 || p2.Items[0].Title != "low" || p2.Next != "" {
		t.Errorf("finding pagination: %+v next=%q %v", p2.Items, p2.Next, err)
	}
}

func testTokens(t *testing.T, open Opener) {
	s, _ := mustOpen(t, open)
	ctx := context.Background()
	if n, err := s.CountTokens(ctx); err != nil || n != 0 {
		t.Fatalf("CountTokens = %d, %v", n, err)
	}
	if err := s.CreateToken(ctx, store.Token{Name: "ci", Role: store.RoleIngest, Hash: "abc"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateToken(ctx, store.Token{Name: "x", Role: "root", Hash: "def"}); err == nil {
		t.Error("unknown role must be refused")
	}
	tok, err := s.LookupToken(ctx, "abc")
	if err != nil || tok.Role != store.RoleIngest || tok.Name != "ci" || tok.CreatedAt.IsZero() {
		t.Fatalf("LookupToken = %+v, %v", tok, err)
	}
	if _, err := s.LookupToken(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown token: %v, want ErrNotFound", err)
	}
	if n, _ := s.CountTokens(ctx); n != 1 {
		t.Errorf("CountTokens = %d", n)
	}
	ts, err := s.ListTokens(ctx)
	if err != nil || len(ts) != 1 || ts[0].Name != "ci" || ts[0].Role != store.RoleIngest || ts[0].Hash != "abc" {
		t.Errorf("ListTokens = %+v, %v", ts, err)
	}
}

func testState(t *testing.T, open Opener) {
	s, _ := mustOpen(t, open)
	ctx := context.Background()
	if _, err := s.GetState(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	for _, v := range []string{"one", "two"} {
		if err := s.PutState(ctx, "k", []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	if v, err := s.GetState(ctx, "k"); err != nil || string(v) != "two" {
		t.Errorf("GetState = %q, %v", v, err)
	}
}

func testAlertsEmpty(t *testing.T, open Opener) {
	s, _ := mustOpen(t, open)
	p, err := s.ListAlerts(context.Background(), store.AlertQuery{})
	if err != nil || p.Items == nil || len(p.Items) != 0 {
		t.Errorf("ListAlerts on a new store = %+v, %v; want an empty, non-nil list", p, err)
	}
}

func testBadCursor(t *testing.T, open Opener) {
	s, _ := mustOpen(t, open)
	if _, err := s.ListEvents(context.Background(), store.EventQuery{Cursor: "garbage!"}); !errors.Is(err, store.ErrBadCursor) {
		t.Errorf("bad cursor: %v, want ErrBadCursor", err)
	}
}

func testConcurrentWriter(t *testing.T, open Opener) {
	s, _ := mustOpen(t, open)
	var batches, committed int
	var mu sync.Mutex
	w := store.NewWriter(s, store.WriterOptions{MaxEvents: 500, Observe: func(n, ins int, _ time.Duration, err error) {
		mu.Lock()
		batches++
		committed += ins
		mu.Unlock()
	}})
	var wg sync.WaitGroup
	const workers, per = 8, 50
	errs := make(chan error, workers*per)
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < per; i++ {
				e := Ev(t, fmt.Sprintf("w%d-%d", g, i), "pipewarden.access.auth", "bob", t0)
				// Every append is retried once, as a client would after a timeout.
				for r := 0; r < 2; r++ {
					if err := w.Append(context.Background(), []event.Event{e}); err != nil {
						errs <- err
					}
				}
			}
		}(g)
	}
	wg.Wait()
	w.Close()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := w.Append(context.Background(), []event.Event{Ev(t, "late", "pipewarden.access.auth", "bob", t0)}); !errors.Is(err, store.ErrClosed) {
		t.Errorf("append after close: %v, want ErrClosed", err)
	}
	if got := len(listAll(t, s, store.EventQuery{})); got != workers*per || committed != workers*per {
		t.Fatalf("stored %d, committed %d; want %d", got, committed, workers*per)
	}
	t.Logf("%d events in %d commits", workers*per, batches)
}

func testIdempotentLarge(t *testing.T, open Opener) {
	s, _ := mustOpen(t, open)
	ctx := context.Background()
	mk := func(from, to int) []event.Event {
		var evs []event.Event
		for i := from; i < to; i++ {
			evs = append(evs, Ev(t, fmt.Sprintf("big%04d", i), "pipewarden.access.auth", "bob", t0))
		}
		return evs
	}
	first := mk(0, 150)
	if n, err := s.AppendEvents(ctx, first); err != nil || n != 150 {
		t.Fatalf("first = %d, %v", n, err)
	}
	// 250 events of which the first 150 are retries, spanning any internal chunking.
	second := mk(0, 250)
	if n, err := s.AppendEvents(ctx, second); err != nil || n != 100 {
		t.Fatalf("second = %d, %v; want 100 new", n, err)
	}
	// New events get increasing sequence numbers; retries get none.
	var last int64
	for i, e := range second {
		switch {
		case i < 150 && e.Seq != 0:
			t.Fatalf("retried event %s got seq %d", e.ID, e.Seq)
		case i >= 150 && e.Seq <= last:
			t.Fatalf("new event %s got seq %d after %d", e.ID, e.Seq, last)
		}
		if i >= 150 {
			last = e.Seq
		}
	}
	got := listAll(t, s, store.EventQuery{Limit: 1000})
	if len(got) != 250 {
		t.Fatalf("stored %d, want 250", len(got))
	}
	stored := map[string]int64{}
	for _, e := range got {
		stored[e.ID] = e.Seq
	}
	for _, e := range append(first, second[150:]...) {
		if e.Seq != stored[e.ID] {
			t.Fatalf("event %s was handed seq %d, stored with %d", e.ID, e.Seq, stored[e.ID])
		}
	}
	// One full chunk: 99 new ids and the first of them again at the end.
	third := append(mk(250, 349), mk(250, 251)...)
	if n, err := s.AppendEvents(ctx, third); err != nil || n != 99 {
		t.Fatalf("third = %d, %v; want 99 new", n, err)
	}
	got = listAll(t, s, store.EventQuery{Limit: 1000})
	for _, e := range got {
		stored[e.ID] = e.Seq
	}
	for i, e := range third {
		if want := stored[e.ID]; (i < 99 && e.Seq != want) || (i == 99 && e.Seq != 0) {
			t.Fatalf("third batch event %d (%s): seq %d, stored %d", i, e.ID, e.Seq, want)
		}
	}
	a, _ := s.ListAssets(ctx, store.AssetQuery{Kind: "principal"})
	if len(a.Items) != 1 || a.Items[0].Events != 349 {
		t.Errorf("asset counts retried events: %+v", a.Items)
	}
}
