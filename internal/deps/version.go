package deps

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	pep440 "github.com/aquasecurity/go-pep440-version"
)

// version is a PEP 440 version. go-pep440-version parses it (every spelling PEP 440 allows:
// alpha/beta/c/pre/preview, -N post releases, implicit numbers, 'v' prefixes, case); the order
// is then computed here on the library's normalized form, because the library's own Compare
// formats both versions on every call and dominated check time (see docs/deps.md). A test
// checks that both orders agree on every version of the shared advisories. Local segments
// separated by '-' or '_' are normalized to '.' first, which PEP 440 requires and the library
// does not do.
type version struct {
	raw     string
	canon   string // the library's normalized form
	public  string // canon without the local segment
	epoch   uint64
	release []uint64 // trailing zeros removed
	pre     preKey
	post    int64 // -1: none
	dev     int64 // -1: none (sorts after any dev release)
	local   []localSeg
	hasLoc  bool
}

type preKey struct {
	class  int // 0: dev-only release (before everything), 1: a pre-release, 2: none
	letter int // a < b < rc
	n      uint64
}

type localSeg struct {
	num bool
	n   uint64
	s   string
}

// parseVersion parses s as PEP 440.
func parseVersion(s string) (version, bool) {
	s = strings.TrimSpace(s)
	if len(s) == 0 || len(s) > 128 {
		return version{}, false
	}
	if i := strings.IndexByte(s, '+'); i >= 0 {
		s = s[:i+1] + strings.NewReplacer("-", ".", "_", ".").Replace(s[i+1:])
	}
	pv, err := pep440.Parse(s)
	if err != nil {
		return version{}, false
	}
	v := version{raw: s, canon: pv.String(), post: -1, dev: -1}
	if !v.decode() {
		return version{}, false
	}
	return v, true
}

// decode reads the library's normalized form: [N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local].
func (v *version) decode() bool {
	s := v.canon
	if i := strings.IndexByte(s, '+'); i >= 0 {
		v.hasLoc = true
		for _, p := range strings.Split(s[i+1:], ".") {
			if n, err := strconv.ParseUint(p, 10, 64); err == nil {
				v.local = append(v.local, localSeg{num: true, n: n})
			} else {
				v.local = append(v.local, localSeg{s: p})
			}
		}
		s = s[:i]
	}
	v.public = s
	if i := strings.IndexByte(s, '!'); i >= 0 {
		e, err := strconv.ParseUint(s[:i], 10, 64)
		if err != nil {
			return false
		}
		v.epoch, s = e, s[i+1:]
	}
	var ok bool
	if s, v.dev, ok = cutNumber(s, ".dev"); !ok {
		return false
	}
	if s, v.post, ok = cutNumber(s, ".post"); !ok {
		return false
	}
	v.pre = preKey{class: 2}
	for letter, l := range []string{"a", "b", "rc"} {
		if i := strings.LastIndex(s, l); i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
			n, err := strconv.ParseUint(s[i+len(l):], 10, 64)
			if err != nil {
				continue
			}
			v.pre, s = preKey{class: 1, letter: letter, n: n}, s[:i]
			break
		}
	}
	if v.pre.class == 2 && v.post < 0 && v.dev >= 0 {
		v.pre.class = 0
	}
	for _, p := range strings.Split(s, ".") {
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return false
		}
		v.release = append(v.release, n)
	}
	for len(v.release) > 0 && v.release[len(v.release)-1] == 0 {
		v.release = v.release[:len(v.release)-1]
	}
	return true
}

func cutNumber(s, marker string) (string, int64, bool) {
	i := strings.LastIndex(s, marker)
	if i < 0 {
		return s, -1, true
	}
	n, err := strconv.ParseInt(s[i+len(marker):], 10, 64)
	if err != nil || n < 0 {
		return s, -1, false
	}
	return s[:i], n, true
}

// compare returns -1, 0 or 1 in PEP 440 order.
func (a version) compare(b version) int {
	if c := cmp.Compare(a.epoch, b.epoch); c != 0 {
		return c
	}
	if c := slices.Compare(a.release, b.release); c != 0 {
		return c
	}
	if c := cmp.Compare(a.pre.class, b.pre.class); c != 0 {
		return c
	}
	if a.pre.class == 1 {
		if c := cmp.Compare(a.pre.letter, b.pre.letter); c != 0 {
			return c
		}
		if c := cmp.Compare(a.pre.n, b.pre.n); c != 0 {
			return c
		}
	}
	if c := cmp.Compare(a.post, b.post); c != 0 {
		return c
	}
	if c := cmp.Compare(devKey(a.dev), devKey(b.dev)); c != 0 {
		return c
	}
	if a.hasLoc != b.hasLoc {
		if a.hasLoc {
			return 1
		}
		return -1
	}
	return slices.CompareFunc(a.local, b.local, func(x, y localSeg) int {
		switch {
		case x.num && y.num:
			return cmp.Compare(x.n, y.n)
		case x.num:
			return 1 // numeric segments sort after alphanumeric ones
		case y.num:
			return -1
		}
		return strings.Compare(x.s, y.s)
	})
}

// devKey puts "no dev release" after every dev release.
func devKey(d int64) uint64 {
	if d < 0 {
		return ^uint64(0)
	}
	return uint64(d)
}

// libCompare is the library's own order, kept for the agreement test.
func libCompare(a, b string) int {
	return pep440.MustParse(a).Compare(pep440.MustParse(b))
}
