package signing

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// maxWalkDepth bounds directory recursion (and symlinked-directory loops when they are allowed).
const maxWalkDepth = 256

// PathProblem is a file or directory of the model that could not be hashed.
type PathProblem struct {
	Name   string // relative POSIX name; "." is the model root
	Reason string // what is wrong, for a person
	Err    error  // the underlying error, if any
}

// TreeError lists the parts of a model that could not be hashed. ComputeManifest returns it with
// the manifest of everything else.
type TreeError struct {
	Root     string
	Problems []PathProblem
}

func (e *TreeError) Error() string {
	parts := make([]string, 0, len(e.Problems))
	for _, p := range e.Problems {
		s := p.Name + ": " + p.Reason
		if p.Err != nil {
			s += ": " + p.Err.Error()
		}
		parts = append(parts, s)
	}
	return fmt.Sprintf("model %s: %d path(s) cannot be hashed: %s", e.Root, len(e.Problems), strings.Join(parts, "; "))
}

// item is one unit of hashing work: a whole file, or a shard of one.
type item struct {
	name       string // resource name
	file       string // relative POSIX file name, for problems
	abs        string
	start, end int64 // shard bounds; end < 0 means the whole file
}

type walker struct {
	o        Options
	root     string
	items    []item
	problems []PathProblem
}

// collect lists what to hash under root, applying ignore rules and the symlink policy. An error is
// returned only when root itself cannot be used.
func collect(root string, o Options) ([]item, *TreeError, error) {
	w := &walker{o: o, root: root}
	fi, err := os.Lstat(root)
	if err != nil {
		return nil, nil, fmt.Errorf("model %s: %w", root, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if !o.AllowSymlinks {
			return nil, nil, fmt.Errorf("model %s: is a symbolic link (allow symlinks to follow it)", root)
		}
		if fi, err = os.Stat(root); err != nil {
			return nil, nil, fmt.Errorf("model %s: %w", root, err)
		}
	}
	switch {
	case fi.Mode().IsRegular():
		w.add(".", ".", root, fi.Size())
	case fi.IsDir():
		real, err := filepath.EvalSymlinks(root)
		if err != nil {
			return nil, nil, fmt.Errorf("model %s: %w", root, err)
		}
		w.dir(root, "", 0, []string{real})
	default:
		return nil, nil, fmt.Errorf("model %s: not a regular file or directory", root)
	}
	if len(w.problems) > 0 {
		return w.items, &TreeError{Root: root, Problems: w.problems}, nil
	}
	return w.items, nil, nil
}

func (w *walker) problem(name, reason string, err error) {
	w.problems = append(w.problems, PathProblem{Name: name, Reason: reason, Err: err})
}

func (w *walker) ignored(name string) bool {
	for _, ig := range w.o.IgnorePaths {
		if ig == "." || name == ig || strings.HasPrefix(name, ig+"/") {
			return true
		}
	}
	for _, ig := range gitPaths() {
		if name == ig || strings.HasPrefix(name, ig+"/") {
			return true
		}
	}
	return false
}

func (w *walker) dir(abs, rel string, depth int, ancestors []string) {
	relName := rel
	if relName == "" {
		relName = "."
	}
	if depth > maxWalkDepth {
		w.problem(relName, "directory nesting too deep", nil)
		return
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		w.problem(relName, "unreadable directory", err)
		return
	}
	for _, e := range entries {
		name := path.Join(rel, e.Name())
		p := filepath.Join(abs, e.Name())
		if !utf8.ValidString(e.Name()) {
			w.problem(strings.ToValidUTF8(name, "\uFFFD"), "file name is not valid UTF-8", nil)
			continue
		}
		if w.ignored(name) {
			continue
		}
		t := e.Type()
		if t&fs.ModeSymlink != 0 {
			if !w.o.AllowSymlinks {
				w.problem(name, "symbolic link refused (allow symlinks to follow it)", nil)
				continue
			}
			fi, err := os.Stat(p)
			if err != nil {
				w.problem(name, "broken symbolic link", err)
				continue
			}
			if fi.IsDir() {
				real, err := filepath.EvalSymlinks(p)
				if err != nil {
					w.problem(name, "unresolvable symbolic link", err)
					continue
				}
				for _, a := range ancestors {
					if a == real {
						w.problem(name, "symbolic link loop", nil)
						real = ""
						break
					}
				}
				if real != "" {
					w.dir(p, name, depth+1, append(ancestors[:len(ancestors):len(ancestors)], real))
				}
				continue
			}
			t = fi.Mode().Type()
		}
		switch {
		case t.IsDir():
			real := filepath.Join(ancestors[len(ancestors)-1], e.Name())
			w.dir(p, name, depth+1, append(ancestors[:len(ancestors):len(ancestors)], real))
		case t.IsRegular():
			if w.o.Only != nil && !w.o.Only[name] {
				continue
			}
			fi, err := os.Stat(p)
			if err != nil {
				w.problem(name, "unreadable file", err)
				continue
			}
			w.add(name, name, p, fi.Size())
		default:
			w.problem(name, "not a regular file or directory", nil)
		}
	}
}

// add queues a file as one item ("files") or as its shards ("shards"; an empty file has none).
func (w *walker) add(name, file, abs string, size int64) {
	if w.o.Method != MethodShards {
		w.items = append(w.items, item{name: name, file: file, abs: abs, end: -1})
		return
	}
	for start := int64(0); start < size; start += w.o.ShardSize {
		end := min(start+w.o.ShardSize, size)
		w.items = append(w.items, item{name: ShardName(name, start, end), file: file, abs: abs, start: start, end: end})
	}
}
