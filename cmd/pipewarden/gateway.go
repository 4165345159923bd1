package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pipewarden/pipewarden/internal/gateway"
)

// gatewayFlags are the flags of `pipewarden gateway`; they override the --config file.
type gatewayFlags struct {
	config, upstream, listen, adminListen, protocol, clientHeader, mode string
	server, token, dataDir, baseline, name                              string
	features                                                            int
}

func newGatewayCmd(g *globals) *cobra.Command {
	var f gatewayFlags
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Run the inference gateway: a reverse proxy that limits, watches and blocks abusive clients",
		Long: `Run the inference gateway in front of a model server (KServe / Triton, TF Serving, MLflow,
OpenAI-compatible, TorchServe). It names each client (API key, bearer token, mTLS subject or source
IP), enforces block lists, rate limits, body size and input shape inline, runs extraction and
probing detectors off the request path, and throttles then blocks clients they flag. Blocks are
kept in --data and managed on the admin listener (loopback only, bearer token in
<data>/gateway-admin.token): GET|POST|DELETE /v1/gateway/blocks, GET /v1/gateway/clients.
With --server, aggregated events and findings go to a pipewarden daemon. See docs/gateway.md.`,
		Example: `  pipewarden gateway --upstream http://127.0.0.1:8081 --protocol kserve-v2
  pipewarden gateway --config gateway.yaml --server http://127.0.0.1:7700 --token $TOKEN`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.load()
			if err != nil {
				return err
			}
			return runGateway(cmd.Context(), g, cfg, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "gateway configuration file (YAML, several routes); see docs/gateway.md")
	fl.StringVar(&f.upstream, "upstream", "", "model server URL (one route for every path)")
	fl.StringVar(&f.listen, "listen", "", "proxy listen address (default 127.0.0.1:8080)")
	fl.StringVar(&f.adminListen, "admin-listen", "", `admin API listen address, loopback only (default 127.0.0.1:8081; "off" disables)`)
	fl.StringVar(&f.protocol, "protocol", "", "protocol of --upstream: kserve-v2 (triton), tf-serving, mlflow, openai, raw (torchserve)")
	fl.StringVar(&f.clientHeader, "client-header", "", "API key header naming the client (default X-API-Key)")
	fl.StringVar(&f.mode, "mode", "", "enforce (block and limit) or shadow (only record)")
	fl.StringVar(&f.server, "server", "", "pipewarden daemon URL to report events and findings to")
	fl.StringVar(&f.token, "token", "", "bearer token for --server (ingest role)")
	fl.StringVar(&f.dataDir, "data", "", "state directory: blocks, detector secret, admin token (default ./pipewarden-gateway)")
	fl.StringVar(&f.baseline, "baseline", "", "training baseline of --upstream's model ('pipewarden data profile' output)")
	fl.IntVar(&f.features, "features", 0, "features per row --upstream's model takes (0: not checked)")
	fl.StringVar(&f.name, "name", "", "endpoint name of --upstream in events and findings (default the URL)")
	return cmd
}

// load reads --config and applies the flags over it.
func (f *gatewayFlags) load() (gateway.Config, error) {
	cfg := gateway.DefaultConfig()
	if f.config != "" {
		c, err := gateway.ReadConfig(f.config)
		if err != nil {
			return cfg, usageErr("%v", err)
		}
		cfg = c
	}
	if f.upstream != "" {
		if len(cfg.Routes) > 0 {
			return cfg, usageErr("--upstream and routes in %s: give one or the other", f.config)
		}
		cfg.Routes = []gateway.RouteConfig{{Name: f.name, Upstream: f.upstream, Protocol: f.protocol, Features: f.features, Baseline: f.baseline}}
	} else if f.protocol != "" || f.baseline != "" || f.features != 0 || f.name != "" {
		return cfg, usageErr("--protocol, --baseline, --features and --name describe --upstream; with --config set them per route")
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&cfg.Listen, f.listen)
	set(&cfg.AdminListen, f.adminListen)
	set(&cfg.ClientHeader, f.clientHeader)
	set(&cfg.Server, f.server)
	set(&cfg.DataDir, f.dataDir)
	if f.mode != "" {
		cfg.Mode = gateway.Mode(f.mode)
	}
	if cfg.DataDir == "" {
		cfg.DataDir = "pipewarden-gateway"
	}
	if err := cfg.Validate(); err != nil {
		if f.config != "" {
			return cfg, usageErr("%s: %v", f.config, err)
		}
		return cfg, usageErr("gateway: %v (give --upstream or --config)", err)
	}
	if cfg.AdminListen != "off" {
		if err := loopbackOnly(cfg.AdminListen); err != nil {
			return cfg, usageErr("--admin-listen %s: %v", cfg.AdminListen, err)
		}
	}
	return cfg, nil
}

func loopbackOnly(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return errors.New("the admin API listens on loopback addresses only (127.0.0.1, ::1, localhost)")
	}
	return nil
}

func runGateway(ctx context.Context, g *globals, cfg gateway.Config, f gatewayFlags) error {
	log := slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	opts, err := cfg.Options()
	if err != nil {
		return usageErr("%v", err)
	}
	opts.Logger = log
	token := f.token
	if token == "" && cfg.TokenFile != "" {
		raw, err := os.ReadFile(cfg.TokenFile)
		if err != nil {
			return usageErr("%s: %v", cfg.TokenFile, err)
		}
		token = strings.TrimSpace(string(raw))
	}
	var rep *gateway.HTTPReporter
	if cfg.Server != "" {
		if _, err := url.Parse(cfg.Server); err != nil {
			return usageErr("--server %s: %v", cfg.Server, err)
		}
		if rep, err = gateway.NewHTTPReporter(cfg.Server, token, log); err != nil {
			return usageErr("%v", err)
		}
		opts.Reporter = rep
	}
	gw, err := gateway.New(opts)
	if err != nil {
		return usageErr("%v", err)
	}
	// Plain HTTP/1.1 requests take the gateway's fast front end; TLS, HTTP/2 and anything
	// unusual go on to net/http and httputil.ReverseProxy.
	proxy := gateway.NewServer(gw, gateway.ServerOptions{ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)})
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		gw.Close()
		return usageErr("--listen %s: %v", cfg.Listen, err)
	}
	scheme := "http"
	if cfg.TLS.Cert != "" {
		tc, err := serverTLS(cfg.TLS)
		if err != nil {
			ln.Close()
			gw.Close()
			return usageErr("%v", err)
		}
		ln = tls.NewListener(ln, tc)
		scheme = "https"
	}
	errc := make(chan error, 2)
	go func() { errc <- proxy.Serve(ln) }()
	fmt.Fprintf(g.stdout, "gateway listening on %s://%s (mode %s, %d routes)\n", scheme, ln.Addr(), opts.Mode, len(opts.Routes))

	var admin *http.Server
	if cfg.AdminListen != "off" {
		adminToken, err := adminToken(cfg.DataDir)
		if err != nil {
			proxy.Close()
			gw.Close()
			return usageErr("%v", err)
		}
		aln, err := net.Listen("tcp", cfg.AdminListen)
		if err != nil {
			proxy.Close()
			gw.Close()
			return usageErr("--admin-listen %s: %v", cfg.AdminListen, err)
		}
		admin = &http.Server{Handler: requireToken(adminToken, gateway.AdminHandler(gw)), ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- admin.Serve(aln) }()
		fmt.Fprintf(g.stdout, "admin listening on http://%s (token in %s)\n", aln.Addr(), filepath.Join(cfg.DataDir, adminTokenFile))
	}

	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if proxy.Shutdown(sctx) != nil {
		proxy.Close()
	}
	if admin != nil {
		admin.Shutdown(sctx)
	}
	gw.Close()
	if rep != nil {
		rep.Close(5 * time.Second)
		log.Info("reporter stopped", "batches_sent", rep.Sent.Load(), "events_dropped", rep.Dropped.Load(), "batches_failed", rep.Failed.Load())
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("gateway: %w", err)
	}
	return nil
}

func serverTLS(c gateway.TLSConfig) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.Cert, c.Key)
	if err != nil {
		return nil, fmt.Errorf("tls %s: %w", c.Cert, err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.ClientCA != "" {
		pem, err := os.ReadFile(c.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("tls client_ca %s: %w", c.ClientCA, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls client_ca %s: no PEM certificate", c.ClientCA)
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	return tc, nil
}

const adminTokenFile = "gateway-admin.token"

// adminToken reads the admin API token from the data directory, creating it on first start.
func adminToken(dir string) (string, error) {
	p := filepath.Join(dir, adminTokenFile)
	if raw, err := os.ReadFile(p); err == nil {
		if t := strings.TrimSpace(string(raw)); t != "" {
			return t, nil
		}
		return "", fmt.Errorf("%s: empty token file (remove it to create a new one)", p)
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	t := hex.EncodeToString(b)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("%s: %w", dir, err)
	}
	if err := os.WriteFile(p, []byte(t+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	return t, nil
}

func requireToken(token string, h http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"missing or wrong bearer token"}` + "\n"))
			return
		}
		h.ServeHTTP(w, r)
	})
}
