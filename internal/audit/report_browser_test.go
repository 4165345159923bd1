package audit_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// TestReportRendersInChromium opens a bundle's report.html in headless Chromium and reads the
// numbers back from the rendered tables: they must be the ones the records imply, and the page
// must load nothing but itself.
func TestReportRendersInChromium(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		if browser, err = exec.LookPath("/usr/bin/chromium"); err != nil {
			t.Skip("chromium is not installed (Debian package chromium; .ci/packages installs it in CI)")
		}
	}
	bundle, _ := exportBundle(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(browser), chromedp.UserDataDir(t.TempDir()),
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	var mu sync.Mutex
	var requests []string
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithListener(func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			mu.Lock()
			requests = append(requests, e.Request.URL)
			mu.Unlock()
		}
	}))
	defer cancel()
	watchdog := time.AfterFunc(90*time.Second, cancel) // the first Run's context must not carry a deadline
	defer watchdog.Stop()
	url := "file://" + filepath.Join(bundle, "report.html")
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s in chromium: %v", url, err)
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	table := func(sel string) [][]string {
		rows, err := chromedp.Run(ctx, chromedp.Evaluate[[][]string](`Array.from(document.querySelectorAll("`+sel+` tr")).map(r => Array.from(r.cells).map(c => c.textContent.trim()))`))
		if err != nil {
			t.Fatalf("read table %s: %v", sel, err)
		}
		if len(rows) < 2 {
			t.Fatalf("table %s rendered %d rows", sel, len(rows))
		}
		return rows
	}
	findings, alerts, latency := table("#findings"), table("#alerts"), table("#latency")
	controls, monitored := table("#controls"), table("#monitored + table")
	if !strings.Contains(title, "audit evidence") {
		t.Errorf("title = %q", title)
	}
	cell := func(rows [][]string, first string, col int) string {
		for _, r := range rows {
			if len(r) > col && r[0] == first {
				return r[col]
			}
		}
		return "(missing)"
	}
	// Columns: stage, critical, high, medium, low, info, [unknown,] total. The sample records
	// before the pipeline's are findings with no severity: counted, not dropped.
	checks := []struct{ name, got, want string }{
		{"model critical findings", cell(findings, "model", 1), "2"},
		{"data high findings", cell(findings, "data", 2), "1"},
		{"findings columns", strings.Join(findings[0], " "), "stage critical high medium low info unknown total"},
		{"findings without a severity", cell(findings, "all stages", 6), "10"},
		{"all findings", cell(findings, "all stages", 7), "13"},
		{"model critical alerts", cell(alerts, "model", 1), "1"},
		{"detect to ack median", cell(latency, "detect → acknowledge", 2), "4m0s"},
		{"detect to resolve max", cell(latency, "detect → resolve", 4), "30m0s"},
		{"inference events", cell(monitored, "inference", 1), "6"},
		{"inference assets", cell(monitored, "inference", 2), "endpoint/fraud-v2"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	var ids []string
	for _, r := range controls[1:] {
		ids = append(ids, strings.SplitN(r[1], " ", 3)[0]+" "+strings.SplitN(r[1], " ", 3)[1])
		if r[3] == "0" && !strings.Contains(r[1], "Suppliers") {
			t.Errorf("control %q points at no evidence", r[1])
		}
	}
	for _, want := range []string{"MEASURE 2.7", "MANAGE 4.1", "Annex A.6.2.8", "Article 12", "Article 15"} {
		if !slices.Contains(ids, want) {
			t.Errorf("control map lacks %s (has %v)", want, ids)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, r := range requests {
		if r != url {
			t.Errorf("the report loaded %s: it must have no external assets", r)
		}
	}
}
