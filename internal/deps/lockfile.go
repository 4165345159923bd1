package deps

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// maxLockfileSize bounds every lockfile and requirements file read.
const maxLockfileSize = 32 << 20

// ErrUnsupported is returned for a file name no parser recognizes.
var ErrUnsupported = errors.New("unsupported lockfile (want requirements*.txt, poetry.lock, Pipfile.lock, pdm.lock, uv.lock, pylock.toml, pylock.*.toml or environment*.yml)")

// Format returns the parser name for a lockfile path, chosen by its base name, or "".
func Format(path string) string {
	base := strings.ToLower(filepath.Base(path))
	switch {
	case base == "poetry.lock":
		return "poetry"
	case base == "pipfile.lock":
		return "pipenv"
	case base == "pdm.lock":
		return "pdm"
	case base == "uv.lock":
		return "uv"
	case base == "pylock.toml" || strings.HasPrefix(base, "pylock.") && strings.HasSuffix(base, ".toml"):
		return "pylock"
	case strings.HasSuffix(base, ".yml") || strings.HasSuffix(base, ".yaml"):
		return "conda"
	case strings.HasSuffix(base, ".txt") || strings.HasSuffix(base, ".in"):
		return "requirements"
	}
	return ""
}

// ParseLockfile reads and parses the lockfile at path, following a requirements file's -r and
// -c includes. An unreadable or unsupported file is an error; content that cannot be parsed is
// returned as Problems (a file that cannot be fully analysed is a finding, not a clean result).
func ParseLockfile(path string) (*Lockfile, error) {
	if Format(path) == "" {
		return nil, fmt.Errorf("parse %s: %w", path, ErrUnsupported)
	}
	data, err := readLimited(path, maxLockfileSize)
	if err != nil {
		return nil, fmt.Errorf("read lockfile %s: %w", path, err)
	}
	return parse(path, data, func(p string) ([]byte, error) { return readLimited(p, maxLockfileSize) })
}

// ParseLockfileData parses data as the lockfile named path. Includes are not followed: each is
// reported as a Problem.
func ParseLockfileData(path string, data []byte) (*Lockfile, error) {
	if len(data) > maxLockfileSize {
		return nil, fmt.Errorf("parse %s: %d bytes, more than the limit of %d", path, len(data), maxLockfileSize)
	}
	return parse(path, data, nil)
}

func parse(path string, data []byte, read func(string) ([]byte, error)) (*Lockfile, error) {
	var lf *Lockfile
	switch Format(path) {
	case "requirements":
		lf = parseRequirements(path, data, read)
	case "poetry":
		lf = parsePoetry(path, data)
	case "pipenv":
		lf = parsePipfileLock(path, data)
	case "pdm":
		lf = parsePDM(path, data)
	case "uv":
		lf = parseUV(path, data)
	case "pylock":
		lf = parsePylock(path, data)
	case "conda":
		lf = parseConda(path, data, read)
	default:
		return nil, fmt.Errorf("parse %s: %w", path, ErrUnsupported)
	}
	return lf, nil
}

// fatal records that the whole file could not be parsed.
func (lf *Lockfile) fatal(line int, format string, a ...any) *Lockfile {
	lf.Problems = append(lf.Problems, Problem{Fatal: true, Message: fmt.Sprintf(format, a...)})
	lf.Problems[len(lf.Problems)-1].Location.Path = lf.Path
	lf.Problems[len(lf.Problems)-1].Location.Line = line
	return lf
}
