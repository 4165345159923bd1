package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/pipewarden/pipewarden/internal/finding"
	"github.com/pipewarden/pipewarden/internal/gateway/detect"
	"github.com/pipewarden/pipewarden/internal/gateway/protocol"
)

// Config is the gateway's YAML configuration: the standalone gateway's --config file, and the
// shape of a gateway section in the daemon's configuration.
type Config struct {
	Listen       string           `yaml:"listen"`
	AdminListen  string           `yaml:"admin_listen"`
	Mode         Mode             `yaml:"mode"`
	OnError      OnError          `yaml:"on_error"`
	ClientHeader string           `yaml:"client_header"`
	DataDir      string           `yaml:"data_dir"`
	Server       string           `yaml:"server"`     // daemon URL to report to
	TokenFile    string           `yaml:"token_file"` // bearer token for the daemon and the admin API
	Interval     time.Duration    `yaml:"interval"`
	SampleRate   float64          `yaml:"sample_rate"`
	QueueSize    int              `yaml:"queue_size"`
	MaxRows      int              `yaml:"max_rows"`     // rows of a batch fed to the detectors
	DetectorCPU  float64          `yaml:"detector_cpu"` // share of one core for the detectors
	TLS          TLSConfig        `yaml:"tls"`
	Limits       LimitsConfig     `yaml:"limits"`
	Escalation   EscalationConfig `yaml:"escalation"`
	Detectors    detect.Config    `yaml:"detectors"`
	Routes       []RouteConfig    `yaml:"routes"`
}

// TLSConfig makes the proxy listener serve TLS; with ClientCA, client certificates are
// verified and their subject names the client.
type TLSConfig struct {
	Cert     string `yaml:"cert"`
	Key      string `yaml:"key"`
	ClientCA string `yaml:"client_ca"`
}

// LimitsConfig is Limits in YAML.
type LimitsConfig struct {
	BodyBytes   int64   `yaml:"body_bytes"`
	ClientRate  float64 `yaml:"client_rate"`
	ClientBurst int     `yaml:"client_burst"`
	GlobalRate  float64 `yaml:"global_rate"`
	GlobalBurst int     `yaml:"global_burst"`
	MaxClients  int     `yaml:"max_clients"`
}

// EscalationConfig is Escalation in YAML.
type EscalationConfig struct {
	At             string        `yaml:"at"`
	BlockAt        string        `yaml:"block_at"`
	ThrottleFactor float64       `yaml:"throttle_factor"`
	ThrottleRate   float64       `yaml:"throttle_rate"`
	ThrottleTTL    time.Duration `yaml:"throttle_ttl"`
	BlockTTL       time.Duration `yaml:"block_ttl"`
	Off            bool          `yaml:"off"`
}

// RouteConfig is one route in YAML.
type RouteConfig struct {
	Name       string `yaml:"name"`
	PathPrefix string `yaml:"path_prefix"`
	Upstream   string `yaml:"upstream"`
	Protocol   string `yaml:"protocol"`
	Features   int    `yaml:"features"`
	MaxRows    int    `yaml:"max_rows"`
	Baseline   string `yaml:"baseline"` // path, relative to the configuration file
}

// DefaultConfig is the configuration with no file.
func DefaultConfig() Config {
	return Config{Listen: "127.0.0.1:8080", AdminListen: "127.0.0.1:8081", Mode: Enforce, OnError: FailOpen,
		ClientHeader: "X-API-Key", Interval: 10 * time.Second, Detectors: detect.DefaultConfig()}
}

// LoadConfig reads a configuration file strictly (unknown keys are errors with their line) and
// validates it. Relative paths in it are resolved against its directory.
func LoadConfig(path string) (Config, error) {
	c, err := ReadConfig(path)
	if err != nil {
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("gateway config %q: %w", path, err)
	}
	return c, nil
}

// ReadConfig is LoadConfig without validation, for callers that complete the configuration
// (command-line flags) before validating it.
func ReadConfig(path string) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read gateway config %q: %w", path, err)
	}
	c, err := decodeConfig(raw)
	if err != nil {
		return Config{}, fmt.Errorf("gateway config %q: %w", path, err)
	}
	dir := filepath.Dir(path)
	rel := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	rel(&c.DataDir)
	rel(&c.TokenFile)
	rel(&c.TLS.Cert)
	rel(&c.TLS.Key)
	rel(&c.TLS.ClientCA)
	for i := range c.Routes {
		rel(&c.Routes[i].Baseline)
	}
	return c, nil
}

// ParseConfig decodes YAML onto DefaultConfig and validates it.
func ParseConfig(raw []byte) (Config, error) {
	c, err := decodeConfig(raw)
	if err != nil {
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func decodeConfig(raw []byte) (Config, error) {
	c := DefaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return Config{}, errors.New(strings.Join(te.Errors, "; "))
		}
		return Config{}, err
	}
	return c, nil
}

// Validate checks what can be checked without opening files.
func (c *Config) Validate() error {
	if c.Mode != Enforce && c.Mode != Shadow {
		return fmt.Errorf("mode %q: want enforce or shadow", c.Mode)
	}
	if c.OnError != FailOpen && c.OnError != FailClosed {
		return fmt.Errorf("on_error %q: want fail_open or fail_closed", c.OnError)
	}
	if c.DetectorCPU < 0 || c.DetectorCPU > 1 {
		return fmt.Errorf("detector_cpu %v: want a share of one core, 0..1", c.DetectorCPU)
	}
	if c.SampleRate < 0 || c.SampleRate > 1 {
		return fmt.Errorf("sample_rate %v: want 0..1", c.SampleRate)
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		return errors.New("tls: cert and key go together")
	}
	for _, s := range []string{c.Escalation.At, c.Escalation.BlockAt} {
		if s != "" {
			if _, err := finding.ParseSeverity(s); err != nil {
				return fmt.Errorf("escalation: %w", err)
			}
		}
	}
	if len(c.Routes) == 0 {
		return errors.New("routes: at least one route (or --upstream) is required")
	}
	seen := map[string]bool{}
	for i, r := range c.Routes {
		u, err := url.Parse(r.Upstream)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return fmt.Errorf("routes[%d]: upstream %q must be an absolute URL", i, r.Upstream)
		}
		if r.Protocol != "" {
			if _, err := protocol.ParseKind(r.Protocol); err != nil {
				return fmt.Errorf("routes[%d]: %w", i, err)
			}
		}
		p := r.PathPrefix
		if p == "" {
			p = "/"
		}
		if seen[p] {
			return fmt.Errorf("routes[%d]: path_prefix %q used twice", i, p)
		}
		seen[p] = true
	}
	return nil
}

// Options turns the configuration into gateway options, loading the routes' baselines.
func (c *Config) Options() (Options, error) {
	o := Options{
		Mode: c.Mode, OnError: c.OnError, ClientHeader: c.ClientHeader, DataDir: c.DataDir,
		Interval: c.Interval, SampleRate: c.SampleRate, QueueSize: c.QueueSize, Detect: c.Detectors,
		MaxRows: c.MaxRows, DetectorCPU: c.DetectorCPU,
		Limits: Limits(c.Limits),
		Escalation: Escalation{ThrottleFactor: c.Escalation.ThrottleFactor, ThrottleRate: c.Escalation.ThrottleRate,
			ThrottleTTL: c.Escalation.ThrottleTTL, BlockTTL: c.Escalation.BlockTTL, Off: c.Escalation.Off},
	}
	if c.Escalation.At != "" {
		o.Escalation.At, _ = finding.ParseSeverity(c.Escalation.At)
	}
	if c.Escalation.BlockAt != "" {
		o.Escalation.BlockAt, _ = finding.ParseSeverity(c.Escalation.BlockAt)
	}
	for i, rc := range c.Routes {
		u, err := url.Parse(rc.Upstream)
		if err != nil {
			return Options{}, fmt.Errorf("routes[%d]: %w", i, err)
		}
		r := Route{Name: rc.Name, PathPrefix: rc.PathPrefix, Upstream: u, Features: rc.Features, MaxRows: rc.MaxRows}
		if rc.Protocol != "" {
			r.Protocol, _ = protocol.ParseKind(rc.Protocol)
		}
		if rc.Baseline != "" {
			b, err := LoadBaseline(rc.Baseline)
			if err != nil {
				return Options{}, fmt.Errorf("routes[%d]: %w", i, err)
			}
			r.Baseline = b
			if r.Features == 0 {
				r.Features = b.Dim()
			}
		}
		o.Routes = append(o.Routes, r)
	}
	return o, nil
}
