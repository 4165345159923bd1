// Package config loads, validates and defaults pipewarden's YAML configuration: strict decoding
// (unknown keys are errors with line numbers), ${VAR} expansion, and paths resolved against the
// file.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/pipewarden/pipewarden/internal/alert"
	"github.com/pipewarden/pipewarden/internal/dataset/monitor"
	"github.com/pipewarden/pipewarden/internal/gateway"
)

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML returns the commented default configuration.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// Config is the whole configuration of serve.
type Config struct {
	Listen   string         `yaml:"listen"`
	DataDir  string         `yaml:"data_dir"`
	Log      Log            `yaml:"log"`
	Limits   Limits         `yaml:"limits"`
	Store    Store          `yaml:"store"`
	Bus      Bus            `yaml:"bus"`
	Auth     Auth           `yaml:"auth"`
	Metrics  Metrics        `yaml:"metrics"`
	Rules    Rules          `yaml:"rules"`
	Models   Models         `yaml:"models"`
	Audit    Audit          `yaml:"audit"`
	Alerting alert.Config   `yaml:"alerting"`
	Data     monitor.Config `yaml:"data"`
	// Gateway, when set, runs the inference gateway inside serve (its own listener).
	Gateway         *gateway.Config `yaml:"gateway"`
	ShutdownTimeout time.Duration   `yaml:"shutdown_timeout"`
	// Debug exposes runtime profiles for performance work.
	Debug Debug `yaml:"debug"`

	// Dir is the directory relative paths were resolved against ("" for Default()).
	Dir string `yaml:"-"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// Limits bound ingestion requests.
type Limits struct {
	MaxBodyBytes   int64 `yaml:"max_body_bytes"`
	MaxEventBytes  int   `yaml:"max_event_bytes"`
	MaxBatchEvents int   `yaml:"max_batch_events"`
	MaxDepth       int   `yaml:"max_depth"`
}

// Store chooses and tunes the store.
type Store struct {
	Driver    string    `yaml:"driver"`
	SQLite    SQLite    `yaml:"sqlite"`
	Postgres  Postgres  `yaml:"postgres"`
	Batch     Batch     `yaml:"batch"`
	Retention Retention `yaml:"retention"`
}

// SQLite tunes the embedded store.
type SQLite struct {
	Path        string `yaml:"path"`
	Synchronous string `yaml:"synchronous"`
}

// Postgres configures the scale-out store.
type Postgres struct {
	DSN string `yaml:"dsn"`
}

// Batch tunes group commit.
type Batch struct {
	MaxEvents int           `yaml:"max_events"`
	MaxWait   time.Duration `yaml:"max_wait"`
}

// Retention bounds how long events are kept.
type Retention struct {
	Events   time.Duration `yaml:"events"`
	Interval time.Duration `yaml:"interval"`
}

// Bus chooses and tunes the bus.
type Bus struct {
	Driver    string `yaml:"driver"`
	QueueSize int    `yaml:"queue_size"`
	NATS      NATS   `yaml:"nats"`
}

// NATS configures the scale-out bus.
type NATS struct {
	URL string `yaml:"url"`
}

// Auth lists tokens known from the file.
type Auth struct {
	Tokens []Token `yaml:"tokens"`
}

// Token is a configured API token, by the hex SHA-256 of its secret.
type Token struct {
	Name   string `yaml:"name"`
	Role   string `yaml:"role"`
	SHA256 string `yaml:"sha256"`
}

// Rules configures the rule engine.
type Rules struct {
	// Files are paths or globs of rule files loaded on top of the embedded default ruleset.
	Files []string `yaml:"files"`
	// DisableDefaults leaves out the embedded default ruleset.
	DisableDefaults bool `yaml:"disable_defaults"`
	// Policy sets the values default and user rules refer to (allowed actors, hours, ...).
	Policy map[string]any `yaml:"policy"`
	// WatchInterval is how often rule files are checked for changes (0 disables watching).
	WatchInterval time.Duration `yaml:"watch_interval"`
	// SnapshotInterval is how often correlation state is saved to the store.
	SnapshotInterval time.Duration `yaml:"snapshot_interval"`
}

// Models configures model integrity: watched directories, approvals, scanning.
type Models struct {
	// Watch lists model directories kept to their approved versions and scanned on change.
	Watch []ModelWatch `yaml:"watch"`
	// Trust verifies signatures of approvals: a PEM public key or a CA certificate chain.
	Trust ModelTrust `yaml:"trust"`
	// CASMaxBytes caps the store of approved model files in the data directory.
	CASMaxBytes int64 `yaml:"cas_max_bytes"`
	// Rescan is the period of the full re-hash (the safety net under file notifications).
	Rescan time.Duration `yaml:"rescan"`
	// Scan runs the unsafe-model scanner on every changed file of a watched directory.
	Scan bool `yaml:"scan"`
	// ScanInterval is how often watched directories are checked for files to scan.
	ScanInterval time.Duration `yaml:"scan_interval"`
	// Allow extends the pickle import allowlist ("module.name" or "module.*").
	Allow []string `yaml:"allow"`
}

// ModelWatch is one watched model directory.
type ModelWatch struct {
	Name string `yaml:"name"`
	Path string `yaml:"path"`
}

// ModelTrust says how approval signatures are verified.
type ModelTrust struct {
	Key       string `yaml:"key"`
	CertChain string `yaml:"cert_chain"`
}

// Audit configures the tamper-evident audit log.
type Audit struct {
	// WitnessFile receives every signed checkpoint: an append-only file on another path, ideally
	// another disk or host, that the operator of the data directory cannot rewrite.
	WitnessFile string `yaml:"witness_file"`
	// WitnessURL receives every signed checkpoint as an HTTP POST.
	WitnessURL string `yaml:"witness_url"`
	// CheckpointEvery and CheckpointInterval say how often checkpoints are signed.
	CheckpointEvery    int           `yaml:"checkpoint_every"`
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
}

// Debug holds diagnostics switches.
type Debug struct {
	// PProf serves Go runtime profiles at /debug/pprof/ to admin tokens.
	PProf bool `yaml:"pprof"`
}

// Metrics controls access to /metrics.
type Metrics struct {
	Access string `yaml:"access"`
}

// Default returns the built-in configuration (the same as default.yaml).
func Default() *Config {
	return &Config{
		Listen:  "127.0.0.1:7700",
		DataDir: "./pipewarden-data",
		Log:     Log{Level: "info", Format: "auto"},
		Limits:  Limits{MaxBodyBytes: 10 << 20, MaxEventBytes: 1 << 20, MaxBatchEvents: 10000, MaxDepth: 32},
		Store: Store{
			Driver:    "sqlite",
			SQLite:    SQLite{Synchronous: "full"},
			Batch:     Batch{MaxEvents: 5000},
			Retention: Retention{Events: 720 * time.Hour, Interval: time.Hour},
		},
		Bus:             Bus{Driver: "memory", QueueSize: 100000},
		Auth:            Auth{Tokens: []Token{}},
		Metrics:         Metrics{Access: "loopback"},
		Models:          Models{Watch: []ModelWatch{}, CASMaxBytes: 64 << 30, Rescan: 5 * time.Minute, Scan: true, ScanInterval: 2 * time.Second, Allow: []string{}},
		Alerting:        alert.DefaultConfig(),
		Data:            monitor.DefaultConfig(),
		Audit:           Audit{CheckpointEvery: 10000, CheckpointInterval: 10 * time.Second},
		Rules:           Rules{Files: []string{}, Policy: map[string]any{}, WatchInterval: 2 * time.Second, SnapshotInterval: 30 * time.Second},
		ShutdownTimeout: 15 * time.Second,
	}
}

// LoadFile reads and validates a configuration file; relative paths in it are resolved against
// its directory.
func LoadFile(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := load(b, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	c.resolve(dir)
	return c, nil
}

// Load parses and validates configuration bytes on top of Default().
func Load(b []byte) (*Config, error) { return load(b, os.LookupEnv) }

const maxConfigBytes = 4 << 20

func load(b []byte, lookup func(string) (string, bool)) (*Config, error) {
	if len(b) > maxConfigBytes {
		return nil, fmt.Errorf("config larger than %d bytes", maxConfigBytes)
	}
	b, err := expand(b, lookup)
	if err != nil {
		return nil, err
	}
	c := Default()
	// A gateway section starts from the gateway's own defaults; without one there is no gateway.
	gw := gateway.DefaultConfig()
	c.Gateway = &gw
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) { // empty file: all defaults
		return nil, cleanYAMLError(err)
	}
	if !hasTopKey(b, "gateway") {
		c.Gateway = nil
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func cleanYAMLError(err error) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:\n")
	msg = strings.ReplaceAll(msg, "\n  ", "; ")
	msg = strings.TrimSpace(strings.TrimPrefix(msg, "yaml: "))
	msg = strings.ReplaceAll(msg, "in type config.", "in ")
	return errors.New(msg)
}

var envRef = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expand replaces ${VAR} with the environment's value; $$ is a literal $.
func expand(b []byte, lookup func(string) (string, bool)) ([]byte, error) {
	var firstErr error
	lines := bytes.Split(b, []byte("\n"))
	for i, line := range lines {
		code, comment := splitComment(line)
		lines[i] = append(envRef.ReplaceAllFunc(code, func(m []byte) []byte {
			if string(m) == "$$" {
				return []byte("$")
			}
			name := string(m[2 : len(m)-1])
			v, ok := lookup(name)
			if !ok && firstErr == nil {
				firstErr = fmt.Errorf("line %d: environment variable %s is not set", i+1, name)
			}
			if strings.ContainsAny(v, "\n\r") && firstErr == nil {
				firstErr = fmt.Errorf("line %d: environment variable %s holds a newline", i+1, name)
			}
			return []byte(v)
		}), comment...)
	}
	return bytes.Join(lines, []byte("\n")), firstErr
}

// hasTopKey reports whether a YAML document's top-level mapping has key.
func hasTopKey(b []byte, key string) bool {
	var doc yaml.Node
	if yaml.Unmarshal(b, &doc) != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return false
	}
	m := doc.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return true
		}
	}
	return false
}

// splitComment separates a YAML line's comment (a # at the start or after a blank, outside
// quotes), so ${VAR} in comments is left alone.
func splitComment(line []byte) (code, comment []byte) {
	var quote byte
	for i, c := range line {
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			return line[:i:i], line[i:]
		}
	}
	return line, nil
}

func (c *Config) resolve(dir string) {
	c.Dir = dir
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	c.DataDir = abs(c.DataDir)
	c.Store.SQLite.Path = abs(c.Store.SQLite.Path)
	for i, f := range c.Rules.Files {
		c.Rules.Files[i] = abs(f)
	}
	for i := range c.Models.Watch {
		c.Models.Watch[i].Path = abs(c.Models.Watch[i].Path)
	}
	c.Audit.WitnessFile = abs(c.Audit.WitnessFile)
	c.Data.Resolve(dir)
	if c.Gateway != nil {
		c.Gateway.DataDir = abs(c.Gateway.DataDir)
		for i := range c.Gateway.Routes {
			c.Gateway.Routes[i].Baseline = abs(c.Gateway.Routes[i].Baseline)
		}
	}
	c.Models.Trust.Key = abs(c.Models.Trust.Key)
	c.Models.Trust.CertChain = abs(c.Models.Trust.CertChain)
}

// SQLitePath is where the embedded store lives.
func (c *Config) SQLitePath() string {
	if c.Store.SQLite.Path != "" {
		return c.Store.SQLite.Path
	}
	return filepath.Join(c.DataDir, "pipewarden.db")
}

var hexSHA256 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Validate checks values that YAML types cannot.
func (c *Config) Validate() error {
	var errs []string
	bad := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen: %q is not host:port", c.Listen)
	}
	if c.DataDir == "" {
		bad("data_dir: must not be empty")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level: %q is not debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "auto", "text", "json":
	default:
		bad("log.format: %q is not auto, text or json", c.Log.Format)
	}
	if c.Limits.MaxBodyBytes <= 0 || c.Limits.MaxEventBytes <= 0 || c.Limits.MaxBatchEvents <= 0 || c.Limits.MaxDepth <= 0 {
		bad("limits: every limit must be positive")
	}
	if int64(c.Limits.MaxEventBytes) > c.Limits.MaxBodyBytes {
		bad("limits.max_event_bytes (%d) is larger than limits.max_body_bytes (%d)", c.Limits.MaxEventBytes, c.Limits.MaxBodyBytes)
	}
	switch c.Store.Driver {
	case "sqlite":
		if s := strings.ToLower(c.Store.SQLite.Synchronous); s != "full" && s != "normal" {
			bad("store.sqlite.synchronous: %q is not full or normal", c.Store.SQLite.Synchronous)
		}
	case "postgres":
		if c.Store.Postgres.DSN == "" {
			bad("store.postgres.dsn: required when store.driver is postgres")
		}
	default:
		bad("store.driver: %q is not sqlite or postgres", c.Store.Driver)
	}
	if c.Store.Batch.MaxEvents <= 0 {
		bad("store.batch.max_events: must be positive")
	}
	if c.Store.Batch.MaxWait < 0 || c.Store.Batch.MaxWait > 10*time.Second {
		bad("store.batch.max_wait: must be between 0 and 10s")
	}
	if c.Store.Retention.Events < 0 {
		bad("store.retention.events: must not be negative")
	}
	if c.Store.Retention.Interval <= 0 {
		bad("store.retention.interval: must be positive")
	}
	switch c.Bus.Driver {
	case "memory":
	case "nats":
		if c.Bus.NATS.URL == "" {
			bad("bus.nats.url: required when bus.driver is nats")
		}
	default:
		bad("bus.driver: %q is not memory or nats", c.Bus.Driver)
	}
	if c.Bus.QueueSize <= 0 {
		bad("bus.queue_size: must be positive")
	}
	for i, t := range c.Auth.Tokens {
		switch t.Role {
		case "ingest", "viewer", "responder", "admin":
		default:
			bad("auth.tokens[%d] (%s): role %q is not ingest, viewer, responder or admin", i, t.Name, t.Role)
		}
		if !hexSHA256.MatchString(t.SHA256) {
			bad("auth.tokens[%d] (%s): sha256 must be 64 lower-case hex digits (the hash, never the token)", i, t.Name)
		}
	}
	switch c.Metrics.Access {
	case "loopback", "public", "token":
	default:
		bad("metrics.access: %q is not loopback, public or token", c.Metrics.Access)
	}
	if c.Rules.WatchInterval < 0 || c.Rules.SnapshotInterval < 0 {
		bad("rules: intervals must not be negative")
	}
	names := map[string]bool{}
	for i, w := range c.Models.Watch {
		if w.Name == "" || w.Path == "" {
			bad("models.watch[%d]: name and path are required", i)
		}
		if names[w.Name] {
			bad("models.watch[%d]: model %q is listed twice", i, w.Name)
		}
		names[w.Name] = true
	}
	if c.Models.Trust.Key != "" && c.Models.Trust.CertChain != "" {
		bad("models.trust: give key or cert_chain, not both")
	}
	if c.Models.CASMaxBytes <= 0 || c.Models.ScanInterval <= 0 {
		bad("models: cas_max_bytes and scan_interval must be positive")
	}
	if c.Audit.CheckpointEvery <= 0 || c.Audit.CheckpointInterval <= 0 {
		bad("audit: checkpoint_every and checkpoint_interval must be positive")
	}
	if c.Gateway != nil {
		if err := c.Gateway.Validate(); err != nil {
			bad("gateway: %v", err)
		}
	}
	if err := c.Data.Validate(); err != nil {
		bad("%v", err)
	}
	if err := c.Alerting.Validate(); err != nil {
		bad("alerting: %v", err)
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown_timeout: must be positive")
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}
