package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestGatewayUsageErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("routes:\n  - upstream: http://127.0.0.1:1\n    protocl: kserve-v2\n"), 0o600)
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("routes:\n  - upstream: http://127.0.0.1:1\n"), 0o600)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no upstream", []string{"gateway"}, "give --upstream or --config"},
		{"admin not loopback", []string{"gateway", "--upstream", "http://127.0.0.1:1", "--admin-listen", "0.0.0.0:9"}, "loopback"},
		{"bad mode", []string{"gateway", "--upstream", "http://127.0.0.1:1", "--mode", "audit"}, `mode "audit"`},
		{"bad protocol", []string{"gateway", "--upstream", "http://127.0.0.1:1", "--protocol", "grpc"}, "unknown protocol"},
		{"relative upstream", []string{"gateway", "--upstream", "localhost"}, "absolute URL"},
		{"unknown config key", []string{"gateway", "--config", bad}, "line 3: field protocl not found"},
		{"missing config", []string{"gateway", "--config", filepath.Join(dir, "nope.yaml")}, "nope.yaml"},
		{"route flag with config", []string{"gateway", "--config", good, "--protocol", "raw"}, "describe --upstream"},
		{"upstream and routes", []string{"gateway", "--config", good, "--upstream", "http://127.0.0.1:2"}, "one or the other"},
		{"missing baseline", []string{"gateway", "--upstream", "http://127.0.0.1:1", "--baseline", filepath.Join(dir, "b.json"), "--listen", "127.0.0.1:0", "--admin-listen", "off", "--data", dir}, "b.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.args, strings.NewReader(""), &out, &errb)
			if code != 2 || !strings.Contains(errb.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, errb.String(), tc.want)
			}
			if strings.Count(strings.TrimSpace(errb.String()), "\n") != 0 {
				t.Errorf("usage error is not one line: %q", errb.String())
			}
		})
	}
}

// irisRows reads the shared iris fixture's features.
func irisRows(t *testing.T) [][]float64 {
	t.Helper()
	f, err := os.Open("../../../shared/fixtures/datasets/iris.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]float64
	for _, r := range recs[1:] {
		row := make([]float64, 4)
		for j := range row {
			row[j], _ = strconv.ParseFloat(r[j], 64)
		}
		rows = append(rows, row)
	}
	return rows
}

// irisModel is a stand-in model server speaking KServe v2: it classifies by petal length.
func irisModel(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Inputs []struct{ Data []float64 } `json:"inputs"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Inputs) != 1 || len(req.Inputs[0].Data) != 4 {
		http.Error(w, `{"error":"bad input"}`, http.StatusBadRequest)
		return
	}
	p := []float64{0.8, 0.1, 0.1}
	switch pl := req.Inputs[0].Data[2]; {
	case pl > 4.8:
		p = []float64{0.1, 0.1, 0.8}
	case pl > 2.5:
		p = []float64{0.1, 0.8, 0.1}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"outputs": []any{map[string]any{"name": "p", "shape": []int{1, 3}, "datatype": "FP64", "data": p}}})
}

func kserveBody(x []float64) string {
	b, _ := json.Marshal(map[string]any{"inputs": []any{map[string]any{"name": "x", "shape": []int{1, len(x)}, "datatype": "FP64", "data": x}}})
	return string(b)
}

type gatewayProc struct {
	proxy, admin, token string
	stderr              *bytes.Buffer
	cmd                 *exec.Cmd
}

func startGateway(t *testing.T, dataDir string, args ...string) *gatewayProc {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"gateway", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--data", dataDir}, args...)...)
	stdout, _ := cmd.StdoutPipe()
	p := &gatewayProc{cmd: cmd, stderr: &bytes.Buffer{}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	timeout := time.After(30 * time.Second)
	for p.proxy == "" || p.admin == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("gateway exited before listening: %s", p.stderr)
			}
			if _, a, ok := strings.Cut(l, "gateway listening on "); ok {
				p.proxy = strings.Fields(a)[0]
			}
			if _, a, ok := strings.Cut(l, "admin listening on "); ok {
				p.admin = strings.Fields(a)[0]
			}
		case <-timeout:
			t.Fatalf("gateway did not report its addresses: %s", p.stderr)
		}
	}
	tok, err := os.ReadFile(filepath.Join(dataDir, "gateway-admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	p.token = strings.TrimSpace(string(tok))
	return p
}

func (p *gatewayProc) infer(t *testing.T, key string, x []float64) int {
	t.Helper()
	req, _ := http.NewRequest("POST", p.proxy+"/v2/models/iris/infer", strings.NewReader(kserveBody(x)))
	req.Header.Set("X-API-Key", key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	return resp.StatusCode
}

func (p *gatewayProc) adminDo(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, p.admin+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+p.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestGatewayBlocksAttackerEndToEnd runs the real binary in front of a model server: a client
// probing around one input is throttled then blocked, benign clients sending noisy real rows
// are never limited, the block is visible and removable on the admin API, survives a restart,
// and the daemon receives events carrying the findings.
func TestGatewayBlocksAttackerEndToEnd(t *testing.T) {
	model := httptest.NewServer(http.HandlerFunc(irisModel))
	defer model.Close()
	var mu sync.Mutex
	var events []map[string]any
	daemon := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/events" || r.Header.Get("Authorization") != "Bearer ingest-token" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		var batch []map[string]any
		if err := json.NewDecoder(r.Body).Decode(&batch); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		events = append(events, batch...)
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer daemon.Close()

	dir := t.TempDir()
	cfg := filepath.Join(dir, "gateway.yaml")
	// Throttling at 200 requests per second keeps the test fast; the second finding blocks.
	os.WriteFile(cfg, []byte(fmt.Sprintf(`routes:
  - name: iris
    path_prefix: /v2/models/iris/
    upstream: %s
    protocol: kserve-v2
    features: 4
escalation:
  throttle_rate: 200
detectors:
  cooldown: 20
`, model.URL)), 0o600)
	data := filepath.Join(dir, "data")
	gw := startGateway(t, data, "--config", cfg, "--server", daemon.URL, "--token", "ingest-token")

	rows := irisRows(t)
	rng := rand.New(rand.NewPCG(1, 2))
	benign := func(i int) (string, []float64) {
		r := rows[rng.IntN(len(rows))]
		x := make([]float64, 4)
		for j := range x {
			x[j] = r[j] + 0.05*rng.NormFloat64()
		}
		return fmt.Sprintf("benign-%d", i%3), x
	}
	seed := rows[60]
	blockedAt := 0
	for q := 1; q <= 400 && blockedAt == 0; q++ {
		key, x := benign(q)
		if code := gw.infer(t, key, x); code != http.StatusOK {
			t.Fatalf("benign query %d from %s: status %d\n%s", q, key, code, gw.stderr)
		}
		a := make([]float64, 4)
		for j := range a {
			a[j] = seed[j] + 0.01*rng.NormFloat64()
		}
		switch code := gw.infer(t, "attacker", a); code {
		case http.StatusOK, http.StatusTooManyRequests:
		case http.StatusForbidden:
			blockedAt = q
		default:
			t.Fatalf("attacker query %d: status %d", q, code)
		}
		time.Sleep(time.Millisecond) // let the detectors keep up, as real traffic would
	}
	if blockedAt == 0 {
		t.Fatalf("attacker not blocked after 400 queries\n%s", gw.stderr)
	}
	for q := range 30 { // benign clients are untouched after the block
		key, x := benign(q)
		if code := gw.infer(t, key, x); code != http.StatusOK {
			t.Fatalf("benign after block: %s status %d", key, code)
		}
	}

	attacker := "key:" + sha16("attacker")
	code, body := gw.adminDo(t, "GET", "/v1/gateway/blocks", "")
	if code != 200 || !strings.Contains(string(body), attacker) || !strings.Contains(string(body), `"source":"auto"`) {
		t.Fatalf("blocks: %d %s", code, body)
	}
	code, body = gw.adminDo(t, "GET", "/v1/gateway/clients", "")
	var clients struct {
		Clients []struct {
			Client, State string
			Blocked       int64
			LastFindings  []struct{ Rule string } `json:"last_findings"`
		}
	}
	json.Unmarshal(body, &clients)
	states := map[string]string{}
	for _, c := range clients.Clients {
		states[c.Client] = c.State
		if c.Client == attacker && (c.Blocked == 0 || len(c.LastFindings) == 0) {
			t.Errorf("attacker stats: %+v", c)
		}
		if c.Client != attacker && len(c.LastFindings) > 0 {
			t.Errorf("benign client %s has findings %+v", c.Client, c.LastFindings)
		}
	}
	if code != 200 || states[attacker] != "blocked" || states["key:"+sha16("benign-0")] != "normal" {
		t.Fatalf("clients: %d %v", code, states)
	}
	req, _ := http.NewRequest("GET", gw.admin+"/v1/gateway/blocks", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("admin API without token: %v %v", resp, err)
	}

	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		found := false
		for _, e := range events {
			d, _ := e["data"].(map[string]any)
			if e["type"] == "pipewarden.inference.request" && d["client"] == attacker && d["findings"] != nil {
				found = true
			}
		}
		n := len(events)
		mu.Unlock()
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon got %d events, none with the attacker's findings\n%s", n, gw.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Blocks survive a restart; DELETE lifts them.
	gw.cmd.Process.Signal(os.Interrupt)
	gw.cmd.Wait()
	gw = startGateway(t, data, "--config", cfg)
	if code := gw.infer(t, "attacker", seed); code != http.StatusForbidden {
		t.Fatalf("after restart the attacker got %d, want 403", code)
	}
	if code, body := gw.adminDo(t, "DELETE", "/v1/gateway/blocks?client="+attacker, ""); code != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	if code := gw.infer(t, "attacker", seed); code != http.StatusOK {
		t.Fatalf("after DELETE the attacker got %d, want 200", code)
	}
	if code, body := gw.adminDo(t, "POST", "/v1/gateway/blocks", `{"client":"ip:203.0.113.9","ttl":"1h","reason":"test"}`); code != http.StatusCreated {
		t.Fatalf("POST: %d %s", code, body)
	}
}

func sha16(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:8])
}
