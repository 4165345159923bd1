package alert_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/alert"
	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/respond"
	"github.com/pipewarden/pipewarden/internal/store"
)

// blocker records block requests.
type blocker struct {
	mu    sync.Mutex
	calls []string
}

func (b *blocker) BlockClient(ctx context.Context, client string, ttl time.Duration, reason string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, client+"/"+ttl.String())
	return nil
}

func blockConfig(dryRun, approval bool) alert.Config {
	cfg := defaultTestConfig()
	cfg.Responses = []respond.Config{{Name: "block-extraction", Type: respond.BlockClient, Matchers: []string{`rule="inference_extraction"`},
		DryRun: dryRun, RequireApproval: approval, TTL: 30 * time.Minute}}
	return cfg
}

func TestBlockClientDryRunRecordsWhatItWouldDo(t *testing.T) {
	b := &blocker{}
	h := newHarness(t, blockConfig(true, false), func(o *alert.Options) { o.Blocker = b })
	ctx := context.Background()
	h.p.Handle(ctx, repeat(fnd("inference_extraction", finding.High, "client", "key-3f9a", t0), 20))
	h.p.Handle(ctx, []finding.Finding{fnd("other_rule", finding.High, "client", "key-3f9a", t0)})
	if len(b.calls) != 0 {
		t.Fatalf("a dry run must not block: %v", b.calls)
	}
	var a store.AlertDetail
	for _, x := range h.alerts("") {
		if x.Rule == "inference_extraction" {
			a, _ = h.p.Alert(ctx, x.ID)
		} else if d, _ := h.p.Alert(ctx, x.ID); len(d.Actions) != 0 {
			t.Errorf("an alert the response does not match got actions: %+v", d.Actions)
		}
	}
	if len(a.Actions) != 1 {
		t.Fatalf("one action per alert, however many findings: %+v", a.Actions)
	}
	act := a.Actions[0]
	if act.Status != store.ActionDryRun || act.Type != respond.BlockClient || !strings.Contains(act.Result, `would block client "key-3f9a" for 30m0s`) {
		t.Errorf("recorded action = %+v", act)
	}
	stored, err := h.st.GetAction(ctx, act.ID)
	if err != nil || !stored.DryRun || stored.Target != "key-3f9a" || stored.AlertID != a.ID {
		t.Errorf("stored action = %+v, %v", stored, err)
	}
	var kinds []string
	for _, r := range h.audit {
		kinds = append(kinds, r.Kind)
	}
	if !strings.Contains(strings.Join(kinds, ","), "action.dry_run") {
		t.Errorf("audit records %v lack the dry run", kinds)
	}
}

func TestBlockClientRequiresApproval(t *testing.T) {
	b := &blocker{}
	h := newHarness(t, blockConfig(false, true), func(o *alert.Options) { o.Blocker = b })
	ctx := context.Background()
	h.p.Handle(ctx, []finding.Finding{fnd("inference_extraction", finding.High, "client", "key-1", t0)})
	pend, _ := h.st.ListActions(ctx, store.ActionPending)
	if len(pend) != 1 || len(b.calls) != 0 {
		t.Fatalf("pending = %+v, calls = %v", pend, b.calls)
	}
	act, err := h.p.ApproveAction(ctx, pend[0].ID, "carol")
	if err != nil || act.Status != store.ActionSucceeded || act.ApprovedBy != "carol" {
		t.Fatalf("approve = %+v, %v", act, err)
	}
	if len(b.calls) != 1 || b.calls[0] != "key-1/30m0s" {
		t.Errorf("blocker calls = %v", b.calls)
	}
	if _, err := h.p.ApproveAction(ctx, pend[0].ID, "carol"); err == nil {
		t.Error("approving twice must fail")
	}
	a, _ := h.p.Alert(ctx, act.AlertID)
	if len(a.Actions) != 1 || a.Actions[0].Status != store.ActionSucceeded {
		t.Errorf("alert actions = %+v", a.Actions)
	}
}
