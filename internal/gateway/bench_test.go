package gateway_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/pipewarden/pipewarden/internal/gateway"
	"github.com/pipewarden/pipewarden/internal/gateway/detect"
)

// benchBody is a 6 KB KServe v2 request: 25 rows of 13 features.
func benchBody() string {
	var b strings.Builder
	b.WriteString(`{"id":"bench","inputs":[{"name":"x","shape":[25,13],"datatype":"FP64","data":[`)
	for i := range 25 * 13 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatFloat(float64(i%97)*0.731234567891234-30, 'g', -1, 64))
	}
	b.WriteString(`]}]}`)
	return b.String()
}

// BenchmarkProxy compares the gateway's request path with a bare httputil.ReverseProxy in
// front of the same upstream (in-process handlers, loopback upstream).
func BenchmarkProxy(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"outputs":[{"name":"p","shape":[25,1],"datatype":"INT64","data":[`+strings.Repeat("1,", 24)+`1]}]}`)
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	body := benchBody()
	run := func(b *testing.B, h http.Handler) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				r := httptest.NewRequest("POST", "/v2/models/m/infer", strings.NewReader(body))
				r.Header.Set("X-API-Key", "k")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	b.Run("bare", func(b *testing.B) {
		run(b, &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u) }, Transport: tr})
	})
	for _, tc := range []struct {
		name string
		off  []string
	}{
		{"gateway_detectors_off", []string{detect.PRADA, detect.Blacklight, detect.Drift, detect.Pattern, detect.Endpoint}},
		{"gateway_detectors_on", nil},
	} {
		b.Run(tc.name, func(b *testing.B) {
			g, err := gateway.New(gateway.Options{Routes: []gateway.Route{{Upstream: u, Features: 13}},
				Detect: detect.Config{Disable: tc.off}, Escalation: gateway.Escalation{Off: true}})
			if err != nil {
				b.Fatal(err)
			}
			defer g.Close()
			run(b, g)
		})
	}
}
