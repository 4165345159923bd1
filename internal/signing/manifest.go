// Package signing computes OpenSSF Model Signing (OMS) manifests of model directories, signs them
// as Sigstore bundles wrapping a DSSE envelope of an in-toto statement, and verifies such bundles
// against the files on disk, naming every missing, extra and changed file.
//
// The formats are those of sigstore/model-transparency (`model_signing`): what it signs verifies
// here, and what is signed here verifies there.
package signing

import (
	"cmp"
	"context"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Serialization methods, as OMS names them in the signature.
const (
	MethodFiles  = "files"
	MethodShards = "shards"
	// DefaultShardSize is OMS's default shard size in bytes.
	DefaultShardSize = 1_000_000_000
	// HashSHA256 is the only content hash supported.
	HashSHA256 = "sha256"
)

// Options say how a model is hashed into a manifest.
type Options struct {
	// Method is MethodFiles (default) or MethodShards.
	Method string
	// ShardSize is the shard length in bytes for MethodShards; 0 means DefaultShardSize.
	ShardSize int64
	// IgnorePaths are paths relative to the model root (POSIX or OS separators); a directory
	// ignores everything under it. The git paths are always ignored as well.
	IgnorePaths []string
	// AllowSymlinks follows symbolic links instead of refusing them.
	AllowSymlinks bool
	// Only, when not nil, restricts hashing to these file names (relative, POSIX); other files
	// are skipped as if ignored. Used to ignore unsigned files.
	Only map[string]bool
	// Workers bounds the parallel hashers; 0 means GOMAXPROCS.
	Workers int
	// BufferSize is each worker's read buffer; 0 means 1 MiB. Memory is Workers x BufferSize.
	BufferSize int
}

// Serialization records how a manifest was computed, as written in the signature's predicate.
type Serialization struct {
	Method        string
	HashType      string
	ShardSize     int64 // MethodShards only
	AllowSymlinks bool
	IgnorePaths   []string // relative to the model root, as recorded in the signature
}

// Resource is one hashed object of a model: a file ("files"), or a shard "path:start:end"
// ("shards"). A model that is a single file has one resource named ".".
type Resource struct {
	Name      string
	Algorithm string // "sha256" for files, "sha256-sharded-N" for shards
	Digest    []byte
}

// Manifest is a model's resources in OMS order with how they were computed.
type Manifest struct {
	// ModelName is the last element of the model path; it is informative only.
	ModelName     string
	Serialization Serialization
	Resources     []Resource
}

// RootDigest is SHA-256 over the concatenated resource digests in manifest order: the subject
// digest of the signed statement.
func (m *Manifest) RootDigest() []byte {
	h := sha256.New()
	for _, r := range m.Resources {
		h.Write(r.Digest)
	}
	return h.Sum(nil)
}

// ComputeManifest hashes the model at root (a directory, or a single file) as OMS does. When some
// files cannot be hashed (unreadable, a refused symlink, a special file), the manifest of the
// others is returned together with a *TreeError listing each of them.
func ComputeManifest(ctx context.Context, root string, opts Options) (*Manifest, error) {
	o, err := opts.normalized()
	if err != nil {
		return nil, err
	}
	items, treeErr, err := collect(root, o)
	if err != nil {
		return nil, err
	}
	res, hashProblems, err := hashItems(ctx, items, o)
	if err != nil {
		return nil, err
	}
	if len(hashProblems) > 0 {
		if treeErr == nil {
			treeErr = &TreeError{Root: root}
		}
		treeErr.Problems = append(treeErr.Problems, hashProblems...)
	}
	m := &Manifest{
		ModelName: modelName(root),
		Serialization: Serialization{
			Method: o.Method, HashType: HashSHA256, AllowSymlinks: o.AllowSymlinks,
			IgnorePaths: recordedIgnores(o.IgnorePaths),
		},
		Resources: res,
	}
	if o.Method == MethodShards {
		m.Serialization.ShardSize = o.ShardSize
	}
	SortResources(m.Resources, o.Method)
	if treeErr != nil {
		slices.SortFunc(treeErr.Problems, func(a, b PathProblem) int { return comparePaths(a.Name, b.Name) })
		return m, treeErr
	}
	return m, nil
}

// gitPaths are always ignored, as OMS does by default.
func gitPaths() []string { return []string{".git", ".gitattributes", ".github", ".gitignore"} }

// recordedIgnores is the ignore list written into a signature: the caller's paths and the git
// paths, as OMS records them, sorted so the output is reproducible.
func recordedIgnores(user []string) []string {
	out := append(slices.Clone(user), gitPaths()...)
	slices.Sort(out)
	return slices.Compact(out)
}

func (o Options) normalized() (Options, error) {
	switch o.Method {
	case "":
		o.Method = MethodFiles
	case MethodFiles, MethodShards:
	default:
		return o, fmt.Errorf("serialization %q: want %s or %s", o.Method, MethodFiles, MethodShards)
	}
	if o.ShardSize == 0 {
		o.ShardSize = DefaultShardSize
	}
	if o.ShardSize < 0 {
		return o, fmt.Errorf("shard size %d: must be positive", o.ShardSize)
	}
	var ign []string
	seen := map[string]bool{}
	for _, p := range o.IgnorePaths {
		c := filepath.ToSlash(filepath.Clean(p))
		if c == ".." || strings.HasPrefix(c, "../") || filepath.IsAbs(p) {
			continue // outside the model, as OMS drops them
		}
		if !seen[c] {
			seen[c] = true
			ign = append(ign, c)
		}
	}
	o.IgnorePaths = ign
	return o, nil
}

// ShardAlgorithm is the resource algorithm name OMS gives a SHA-256 shard of the given size.
func ShardAlgorithm(shardSize int64) string {
	return HashSHA256 + "-sharded-" + strconv.FormatInt(shardSize, 10)
}

func modelName(root string) string {
	n := filepath.Base(filepath.Clean(root))
	if n == "." || n == ".." || n == string(filepath.Separator) {
		if abs, err := filepath.Abs(root); err == nil {
			n = filepath.Base(abs)
		}
	}
	return n
}

// SortResources puts resources in OMS order: by path compared element by element, then, for
// shards, by start and end offsets as numbers.
func SortResources(rs []Resource, method string) {
	slices.SortStableFunc(rs, func(a, b Resource) int {
		if method != MethodShards {
			return comparePaths(a.Name, b.Name)
		}
		pa, sa, ea, _ := SplitShard(a.Name)
		pb, sb, eb, _ := SplitShard(b.Name)
		if c := comparePaths(pa, pb); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(sa, sb), cmp.Compare(ea, eb))
	})
}

// comparePaths orders POSIX paths element by element, as Python's PurePosixPath does: "a/b"
// sorts before "a.txt" although '/' > '.'.
func comparePaths(a, b string) int {
	for {
		ea, ra, oka := strings.Cut(a, "/")
		eb, rb, okb := strings.Cut(b, "/")
		if c := strings.Compare(ea, eb); c != 0 {
			return c
		}
		switch {
		case !oka && !okb:
			return 0
		case !oka:
			return -1
		case !okb:
			return 1
		}
		a, b = ra, rb
	}
}

// SplitShard parses a shard resource name "path:start:end". The path may itself contain ':'.
func SplitShard(name string) (path string, start, end int64, err error) {
	i := strings.LastIndexByte(name, ':')
	if i < 0 {
		return name, 0, 0, fmt.Errorf("shard name %q: want path:start:end", name)
	}
	j := strings.LastIndexByte(name[:i], ':')
	if j < 0 {
		return name, 0, 0, fmt.Errorf("shard name %q: want path:start:end", name)
	}
	s, err1 := strconv.ParseInt(name[j+1:i], 10, 64)
	e, err2 := strconv.ParseInt(name[i+1:], 10, 64)
	if err1 != nil || err2 != nil || s < 0 || e < s {
		return name, 0, 0, fmt.Errorf("shard name %q: bad offsets", name)
	}
	return name[:j], s, e, nil
}

// ShardName formats a shard resource name.
func ShardName(path string, start, end int64) string {
	return path + ":" + strconv.FormatInt(start, 10) + ":" + strconv.FormatInt(end, 10)
}

// FileOf is the file a resource belongs to: its name for files, the path part for shards.
func FileOf(r Resource, method string) string {
	if method == MethodShards {
		if p, _, _, err := SplitShard(r.Name); err == nil {
			return p
		}
	}
	return r.Name
}

// ResolveIgnorePaths turns paths given on a command line (relative to the current directory, or
// absolute) into paths relative to the model root, as model_signing resolves them: symbolic links
// are resolved on both sides and paths outside the model are dropped.
func ResolveIgnorePaths(model string, paths []string) ([]string, error) {
	root, err := resolvePath(model)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range paths {
		rp, err := resolvePath(p)
		if err != nil {
			return nil, err
		}
		rel, err := filepath.Rel(root, rp)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			continue
		}
		out = append(out, filepath.ToSlash(rel))
	}
	return out, nil
}

// resolvePath is an absolute path with symbolic links resolved as far as the path exists.
func resolvePath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", p, err)
	}
	rest := ""
	for cur := abs; ; {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(r, rest), nil
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return abs, nil
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}
