package app_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pipewarden/pipewarden/internal/app"
	"github.com/pipewarden/pipewarden/internal/config"
)

// TestEmbeddedGateway: serve with a gateway section proxies to the model server, its traffic
// arrives as events, a block added through the daemon's API stops the client, and findings a
// gateway reports inside its events become findings.
func TestEmbeddedGateway(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"outputs":[{"name":"p","shape":[1],"datatype":"FP32","data":[0.9]}]}`)
	}))
	defer upstream.Close()
	cfg, err := config.Load([]byte("gateway:\n  listen: 127.0.0.1:0\n  interval: 100ms\n  routes:\n    - name: fraud\n      path_prefix: /\n      upstream: " + upstream.URL + "\n      protocol: kserve-v2\n"))
	if err != nil {
		t.Fatal(err)
	}
	var a *app.App
	h := start(t, func(c *config.Config) { c.Gateway = cfg.Gateway }, func(x *app.App) { a = x })
	gw := "http://" + a.GatewayAddr()
	call := func(key string) int {
		req, _ := http.NewRequest("POST", gw+"/v2/models/fraud/infer", strings.NewReader(`{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}`))
		req.Header.Set("X-API-Key", key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := call("key-good"); code != 200 {
		t.Fatalf("proxied request = %d", code)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, body := h.do("GET", "/v1/events?type=pipewarden.inference.request", h.token, "", "")
		if len(body["items"].([]any)) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("gateway traffic never arrived as events")
		}
		time.Sleep(50 * time.Millisecond)
	}
	code, _, body := h.do("POST", "/v1/gateway/blocks", h.token, "application/json", `{"client":"`+clientOf(t, h)+`","ttl":"1h","reason":"test"}`)
	if code != 201 {
		t.Fatalf("block = %d %v", code, body)
	}
	if code := call("key-good"); code != 403 {
		t.Errorf("blocked client got %d, want 403", code)
	}
	if code := call("key-other"); code != 200 {
		t.Errorf("another client got %d, want 200", code)
	}
	// A standalone gateway reports findings inside its events.
	ev := `{"specversion":"1.0","id":"gw-f1","source":"//gateway","type":"pipewarden.inference.request","data":{"endpoint":"fraud","client":"k9","status":200,"latency_ms":1,"findings":[{"rule":"gateway.extraction.prada","severity":"high","title":"client k9 queries look like extraction","subject":{"kind":"client","name":"k9"},"confidence":0.9,"atlas":["AML.T0024"]}]}}`
	if code, _, b := h.do("POST", "/v1/events", h.token, ce, ev); code != 202 {
		t.Fatal(code, b)
	}
	items := waitFindings(t, h, "?rule=gateway.extraction.prada", func(it []any) bool { return len(it) == 1 })
	if ids := items[0].(map[string]any)["event_ids"].([]any); len(ids) != 1 || ids[0] != "gw-f1" {
		t.Errorf("gateway finding must rest on its event: %v", items[0])
	}
}

// clientOf returns the client id the gateway derived for the first proxied request.
func clientOf(t *testing.T, h *harness) string {
	_, _, body := h.do("GET", "/v1/gateway/clients", h.token, "", "")
	cs, _ := body["clients"].([]any)
	if len(cs) == 0 {
		t.Fatalf("no clients: %v", body)
	}
	id, _ := cs[0].(map[string]any)["client"].(string)
	if id == "" {
		t.Fatalf("client without id: %v", cs[0])
	}
	return id
}
