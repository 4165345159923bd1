package monitor

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
)

// Config is the daemon's data-integrity configuration, meant to be embedded as `data:` in the
// main configuration file. Zero values take the defaults documented on each field.
type Config struct {
	// Roots are the directories a pipewarden.data.batch event's path may point into; a path
	// outside every root, or escaping one through ".." or a symlink, is
	// refused with a finding. No roots: path batches are refused.
	Roots []string `yaml:"roots"`
	// LearnFromBatches, when positive, builds a dataset's baseline from its first N batches if
	// none is registered (default 0: batches without a baseline are reported unchecked).
	LearnFromBatches int `yaml:"learn_from_batches"`
	// Datasets lists baselines from files written by 'pipewarden data profile'.
	Datasets []Dataset `yaml:"datasets"`
	// MaxFileBytes bounds a batch file read from a root (default 4 GiB).
	MaxFileBytes int64 `yaml:"max_file_bytes"`
	// MaxBaselineBytes bounds a baseline posted to the API (default 64 MiB).
	MaxBaselineBytes int64 `yaml:"max_baseline_bytes"`
	// Alpha is the false discovery rate of the drift tests (default 0.01).
	Alpha float64 `yaml:"alpha"`
	// IndicatorP is the family-wise p-value a manipulation indicator must reach (default 1e-4).
	IndicatorP float64 `yaml:"indicator_p"`
	// Streaming configures the per-feature change detectors on inference requests.
	Streaming Streaming `yaml:"streaming"`
}

// Dataset is a dataset named in the configuration. With a baseline file it is managed by the
// configuration (the API refuses to replace its baseline); without one (learn_from_batches
// set) it is learned from its first batches, with this label and segment.
type Dataset struct {
	Name     string `yaml:"name"`
	Baseline string `yaml:"baseline"` // path of a baseline file; relative to the config file
	Label    string `yaml:"label"`    // label column (default: the baseline's)
	Segment  string `yaml:"segment"`  // also judge each value of this column on its own
}

// Streaming configures Page-Hinkley or CUSUM per feature of each endpoint's inference
// requests. Thresholds are in units of the feature's in-control sigma, estimated from the
// first Warmup values (and again after every alarm, so a lasting shift alarms once).
type Streaming struct {
	// Disabled turns the detectors off.
	Disabled bool `yaml:"disabled"`
	// Detector is cusum (default) or page_hinkley.
	Detector string `yaml:"detector"`
	// Warmup is how many values of a feature estimate its mean and sigma (default 500).
	Warmup int `yaml:"warmup"`
	// K is the CUSUM allowance in sigmas: half the smallest shift worth detecting (default 0.5).
	K float64 `yaml:"k"`
	// H is the CUSUM decision interval in sigmas; 0 derives it from ARL.
	H float64 `yaml:"h"`
	// ARL is the expected number of in-control values between two false alarms of one feature
	// (default 100,000); used when H is 0.
	ARL float64 `yaml:"arl"`
	// Delta is the Page-Hinkley tolerance in sigmas (default 0.5).
	Delta float64 `yaml:"delta"`
	// Lambda is the Page-Hinkley threshold in sigmas (default 50).
	Lambda float64 `yaml:"lambda"`
	// MaxEndpoints and MaxFeatures bound the state kept (defaults 1000 and 256); values
	// beyond them are counted, not tracked.
	MaxEndpoints int `yaml:"max_endpoints"`
	MaxFeatures  int `yaml:"max_features"`
}

// Defaults.
const (
	DefaultMaxFileBytes     = 4 << 30
	DefaultMaxBaselineBytes = 64 << 20
	maxLearnBatches         = 1000
)

// DefaultConfig returns the configuration with every default filled in.
func DefaultConfig() Config {
	var c Config
	c.withDefaults()
	return c
}

func (c *Config) withDefaults() {
	if c.MaxFileBytes == 0 {
		c.MaxFileBytes = DefaultMaxFileBytes
	}
	if c.MaxBaselineBytes == 0 {
		c.MaxBaselineBytes = DefaultMaxBaselineBytes
	}
	s := &c.Streaming
	if s.Detector == "" {
		s.Detector = "cusum"
	}
	if s.Warmup == 0 {
		s.Warmup = 500
	}
	if s.K == 0 {
		s.K = 0.5
	}
	if s.ARL == 0 {
		s.ARL = 100000
	}
	if s.Delta == 0 {
		s.Delta = 0.5
	}
	if s.Lambda == 0 {
		s.Lambda = 50
	}
	if s.MaxEndpoints == 0 {
		s.MaxEndpoints = 1000
	}
	if s.MaxFeatures == 0 {
		s.MaxFeatures = 256
	}
}

// Resolve makes relative roots and baseline paths absolute against dir (the directory of the
// configuration file), as the config package does for its own paths.
func (c *Config) Resolve(dir string) {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	for i := range c.Roots {
		c.Roots[i] = abs(c.Roots[i])
	}
	for i := range c.Datasets {
		c.Datasets[i].Baseline = abs(c.Datasets[i].Baseline)
	}
}

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ValidName reports whether name can name a dataset: 1 to 128 letters, digits, '.', '_' or
// '-', starting with a letter or digit (it names a directory in the data dir).
func ValidName(name string) bool { return validName.MatchString(name) }

// Validate checks values that YAML types cannot; each problem is named by its key under data.
func (c *Config) Validate() error {
	var errs []string
	bad := func(format string, a ...any) { errs = append(errs, "data."+fmt.Sprintf(format, a...)) }
	for i, r := range c.Roots {
		if !filepath.IsAbs(r) {
			bad("roots[%d]: %q must be an absolute path (or relative to the config file)", i, r)
		}
	}
	if c.LearnFromBatches < 0 || c.LearnFromBatches > maxLearnBatches {
		bad("learn_from_batches: %d is not between 0 and %d", c.LearnFromBatches, maxLearnBatches)
	}
	if c.MaxFileBytes < 0 || c.MaxBaselineBytes < 0 {
		bad("max_file_bytes, max_baseline_bytes: must not be negative")
	}
	if c.Alpha < 0 || c.Alpha >= 1 {
		bad("alpha: %v is not in [0, 1)", c.Alpha)
	}
	if c.IndicatorP < 0 || c.IndicatorP >= 1 {
		bad("indicator_p: %v is not in [0, 1)", c.IndicatorP)
	}
	seen := map[string]bool{}
	for i, d := range c.Datasets {
		switch {
		case !ValidName(d.Name):
			bad("datasets[%d].name: %q must be 1-128 letters, digits, '.', '_' or '-'", i, d.Name)
		case seen[d.Name]:
			bad("datasets[%d].name: %q is listed twice", i, d.Name)
		}
		seen[d.Name] = true
		if d.Baseline == "" && c.LearnFromBatches == 0 {
			bad("datasets[%d].baseline: required (a file written by 'pipewarden data profile') unless learn_from_batches is set", i)
		}
	}
	s := c.Streaming
	switch s.Detector {
	case "", "cusum", "page_hinkley":
	default:
		bad("streaming.detector: %q is not cusum or page_hinkley", s.Detector)
	}
	if s.Warmup < 0 || s.K < 0 || s.H < 0 || s.Delta < 0 || s.Lambda < 0 || s.MaxEndpoints < 0 || s.MaxFeatures < 0 {
		bad("streaming: warmup, k, h, delta, lambda, max_endpoints and max_features must not be negative")
	}
	if s.Warmup != 0 && s.Warmup < 10 {
		bad("streaming.warmup: %d is too few values to estimate a sigma (at least 10)", s.Warmup)
	}
	if s.ARL != 0 && s.ARL < 10 {
		bad("streaming.arl: %v must be at least 10", s.ARL)
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}
