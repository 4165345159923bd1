package deps

import (
	"strings"

	pep440 "github.com/aquasecurity/go-pep440-version"
)

// version is a parsed PEP 440 version. The comparison is go-pep440-version's; two of its gaps
// are handled here: local segments separated by '-' or '_' (PEP 440 treats them as '.', the
// library does not), and the cost of its Compare, which formats both versions before comparing.
type version struct {
	v   pep440.Version
	raw string
}

// parseVersion parses s as PEP 440. Leading and trailing space and a 'v' prefix are accepted.
func parseVersion(s string) (version, bool) {
	s = strings.TrimSpace(s)
	if len(s) == 0 || len(s) > 128 {
		return version{}, false
	}
	if i := strings.IndexByte(s, '+'); i >= 0 {
		s = s[:i+1] + strings.NewReplacer("-", ".", "_", ".").Replace(s[i+1:])
	}
	v, err := pep440.Parse(s)
	if err != nil {
		return version{}, false
	}
	return version{v: v, raw: s}, true
}

// compare returns -1, 0 or 1.
func (a version) compare(b version) int { return a.v.Compare(b.v) }

// public is the version without its local segment ("2.1.0+cu121" -> "2.1.0").
func (a version) public() string { return a.v.Public() }
