package modelscan

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// Verdict is what the policy says about one imported name.
type Verdict int

// Verdicts, least to most severe.
const (
	Allowed    Verdict = iota // on the allowlist
	Unverified                // not on the allowlist: high
	Dangerous                 // a known way to run code: critical
)

// Policy is the default-deny import policy for pickles: an allowlist of what benign models
// need, a list of known-dangerous callables, and everything else unverified.
type Policy struct {
	allow       map[string]bool
	allowPrefix []string
	cache       sync.Map // qualified name -> policyAnswer
}

type policyAnswer struct {
	v      Verdict
	reason string
}

// NewPolicy returns the default policy extended with extra allowed names ("module.name" or
// "module.*"). Dangerous names are refused: they cannot be allowed.
func NewPolicy(extra []string) (*Policy, error) {
	p := &Policy{allow: map[string]bool{}}
	for _, n := range defaultAllow() {
		p.allow[n] = true
	}
	for _, n := range extra {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if !validAllowName.MatchString(n) {
			return nil, fmt.Errorf("allow %q: want module.name or module.*", n)
		}
		base := strings.TrimSuffix(n, ".*")
		if v, why := dangerous(base); v == Dangerous {
			return nil, fmt.Errorf("allow %q: %s cannot be allowlisted", n, why)
		}
		if strings.HasSuffix(n, ".*") {
			p.allowPrefix = append(p.allowPrefix, base+".")
		} else {
			p.allow[n] = true
		}
	}
	return p, nil
}

var validAllowName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*(\.\*)?$`)

// Classify judges the import of name from module (name may be a dotted attribute path).
func (p *Policy) Classify(module, name string) (Verdict, string) {
	module, name = fixImports(module, name)
	q := module
	if name != "" {
		q += "." + name
	}
	if a, ok := p.cache.Load(q); ok {
		ans := a.(policyAnswer)
		return ans.v, ans.reason
	}
	v, why := p.classify(module, name, q)
	p.cache.Store(q, policyAnswer{v, why})
	return v, why
}

func (p *Policy) classify(module, name, q string) (Verdict, string) {
	if v, why := dangerous(q); v == Dangerous {
		return v, why
	}
	// An attribute path can walk from any module to one it imported: posixpath.os.system.
	parts := strings.Split(name, ".")
	for i := range parts {
		if v, why := dangerous(strings.Join(parts[i:], ".")); v == Dangerous && i+1 < len(parts) {
			return v, "attribute path reaches " + strings.Join(parts[i:], ".") + ": " + why
		}
	}
	for _, part := range parts {
		if len(part) > 4 && strings.HasPrefix(part, "__") && strings.HasSuffix(part, "__") && !benignDunder[q] {
			return Dangerous, "dunder attribute " + part + " reaches interpreter internals"
		}
	}
	if p.allow[q] || defaultAllowPattern(module, name) {
		return Allowed, ""
	}
	for _, pre := range p.allowPrefix {
		if strings.HasPrefix(q, pre) {
			return Allowed, ""
		}
	}
	return Unverified, "not on the allowlist"
}

// benignDunder are dunder names pickle itself emits for ordinary objects.
var benignDunder = map[string]bool{
	"copyreg.__newobj__":    true,
	"copyreg.__newobj_ex__": true,
}

// dangerous reports whether a qualified name is a known way to run code, reach the file system,
// the network or the interpreter, or load another serialized object.
func dangerous(q string) (Verdict, string) {
	for _, m := range dangerousModules {
		if q == m || strings.HasPrefix(q, m+".") {
			return Dangerous, "module " + m + " can run code or reach the system"
		}
	}
	if why, ok := dangerousNames[q]; ok {
		return Dangerous, why
	}
	for pre, why := range dangerousNamePrefixes {
		if q == pre || strings.HasPrefix(q, pre+".") {
			return Dangerous, why
		}
	}
	return Allowed, ""
}

// dangerousModules: importing anything from these is critical.
var dangerousModules = []string{
	"os", "posix", "nt", "posixpath", "ntpath", "sys", "subprocess", "_posixsubprocess", "pty", "commands", "popen2",
	"runpy", "pip", "_pip", "ensurepip", "venv", "setuptools", "distutils", "pkg_resources",
	"socket", "_socket", "ssl", "http", "httplib", "urllib", "urllib2", "urllib3", "requests", "aiohttp", "httpx",
	"ftplib", "smtplib", "smtpd", "telnetlib", "poplib", "imaplib", "nntplib", "xmlrpc", "xmlrpclib", "socketserver",
	"asyncio", "multiprocessing", "concurrent", "threading", "_thread", "thread", "signal",
	"ctypes", "_ctypes", "cffi", "importlib", "imp", "pkgutil", "zipimport",
	"pickle", "_pickle", "cPickle", "pickletools", "dill", "cloudpickle", "shelve", "dbm", "marshal", "jsonpickle",
	"code", "codeop", "pdb", "bdb", "trace", "timeit", "profile", "cProfile", "pydoc", "doctest", "idlelib",
	"webbrowser", "shutil", "tempfile", "glob", "io", "_io", "pathlib", "fileinput", "tarfile", "zipfile",
	"gc", "inspect", "platform", "logging.config", "sqlite3", "site", "sysconfig",
	"torch._inductor", "torch.hub", "torch.utils.cpp_extension", "torch.jit", "torch.package", "torch._dynamo",
	"torch.serialization.load", "torch.load", "torch.storage._load_from_bytes", "torch._C._load_for_lite_interpreter",
	"numpy.load", "numpy.testing", "numpy.f2py", "numpy.distutils", "numpy.lib.npyio",
	"joblib.load", "joblib.numpy_pickle.load", "sklearn.externals.joblib.load",
	"pandas.read_pickle", "pandas.io.pickle", "keras.models.load_model", "keras.saving",
	"tensorflow.io", "tensorflow.keras.models.load_model",
	"yaml.load", "yaml.unsafe_load", "yaml.full_load", "yaml.load_all", "yaml.unsafe_load_all",
	"jinja2", "mako", "IPython",
}

var dangerousNames = map[string]string{
	"builtins.eval":                   "evaluates Python source",
	"builtins.exec":                   "executes Python source",
	"builtins.execfile":               "executes a Python file",
	"builtins.compile":                "compiles Python source to code",
	"builtins.__import__":             "imports any module",
	"builtins.getattr":                "reaches any attribute of any object",
	"builtins.setattr":                "mutates any object",
	"builtins.delattr":                "mutates any object",
	"builtins.open":                   "opens files",
	"builtins.file":                   "opens files",
	"builtins.input":                  "reads the terminal",
	"builtins.breakpoint":             "starts a debugger",
	"builtins.globals":                "reaches interpreter globals",
	"builtins.locals":                 "reaches interpreter locals",
	"builtins.vars":                   "reaches a module's namespace",
	"builtins.apply":                  "calls any callable",
	"builtins.reload":                 "re-executes a module",
	"builtins.help":                   "runs the pager",
	"builtins.memoryview":             "exposes raw memory",
	"builtins.type":                   "creates classes at load time",
	"builtins.object.__reduce__":      "reaches reduction internals",
	"types.CodeType":                  "builds code objects",
	"types.FunctionType":              "builds functions from code",
	"types.MethodType":                "binds callables",
	"types.LambdaType":                "builds functions from code",
	"operator.attrgetter":             "reaches any attribute of any object",
	"operator.methodcaller":           "calls any method of any object",
	"_operator.attrgetter":            "reaches any attribute of any object",
	"_operator.methodcaller":          "calls any method of any object",
	"functools.reduce":                "chains calls",
	"_functools.reduce":               "chains calls",
	"copyreg._reconstructor.__call__": "reaches reduction internals",
	"numpy.core.multiarray._reconstruct.__globals__": "reaches interpreter internals",
}

var dangerousNamePrefixes = map[string]string{
	"torch.serialization._load":      "loads a nested pickle",
	"torch.serialization.load":       "loads a nested pickle",
	"torch.storage._load_from_bytes": "loads a nested pickle",
	"torch._weights_only_unpickler":  "reaches the unpickler",
	"torch.ops":                      "calls native operators",
	"torch._ops":                     "calls native operators",
	"torch.Tensor.__reduce_ex__":     "reaches reduction internals",
}

// fixImports maps Python 2 module names the unpickler translates (fix_imports) to their
// Python 3 names, so that __builtin__.eval is judged as builtins.eval.
func fixImports(module, name string) (string, string) {
	switch module {
	case "__builtin__", "exceptions":
		module = "builtins"
	case "copy_reg":
		module = "copyreg"
	case "cPickle":
		module = "pickle"
	case "httplib":
		module = "http.client"
	case "urllib2":
		module = "urllib.request"
	case "commands":
		module = "subprocess"
	case "Queue":
		module = "queue"
	case "cStringIO", "StringIO":
		module = "io"
	case "UserDict":
		module = "collections"
	}
	return module, name
}

// defaultAllow is what benign models need: the PyTorch weights_only set, NumPy reconstruction,
// and a few containers. See docs/scan.md for why each is safe.
func defaultAllow() []string {
	l := []string{
		"collections.OrderedDict", "collections.Counter", "collections.defaultdict", "collections.deque",
		"torch.nn.parameter.Parameter", "torch.serialization._get_layout", "torch.Size", "torch.Tensor",
		"torch.device", "torch.dtype", "_codecs.encode", "builtins.bytearray", "builtins.set", "builtins.frozenset",
		"builtins.complex", "builtins.slice", "builtins.range", "builtins.object", "builtins.bytes",
		"builtins.int", "builtins.float", "builtins.str", "builtins.list", "builtins.dict", "builtins.tuple", "builtins.bool",
		"copyreg._reconstructor", "copyreg.__newobj__", "copyreg.__newobj_ex__",
		"torch._tensor._rebuild_from_type_v2", "torch.storage.TypedStorage", "torch.storage.UntypedStorage",
		"torch.per_tensor_affine", "torch.per_tensor_symmetric", "torch.per_channel_affine",
		"torch.per_channel_symmetric", "torch.per_channel_affine_float_qparams",
		"torch.strided", "torch.sparse_coo", "torch.sparse_csr", "torch.sparse_csc", "torch.sparse_bsr", "torch.sparse_bsc", "torch._mkldnn",
		"torch.contiguous_format", "torch.channels_last", "torch.channels_last_3d", "torch.preserve_format",
		"numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct",
		"numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar", "numpy.ndarray", "numpy.dtype",
		"numpy.ma.core._mareconstruct", "numpy.ma.core.MaskedArray",
		"numpy.random._pickle.__randomstate_ctor", "numpy.random._pickle.__bit_generator_ctor",
		"numpy.random._pickle.__generator_ctor", "numpy.random.mtrand.RandomState",
		"numpy.random._mt19937.MT19937", "numpy.random._pcg64.PCG64", "numpy.random._generator.Generator",
		"joblib.numpy_pickle.NumpyArrayWrapper", "sklearn.externals.joblib.numpy_pickle.NumpyArrayWrapper",
		"sklearn.tree._tree.Tree", "sklearn.neighbors._kd_tree.KDTree", "sklearn.neighbors._ball_tree.BallTree",
		"xgboost.core.Booster", "xgboost.sklearn.XGBClassifier", "xgboost.sklearn.XGBRegressor", "xgboost.sklearn.XGBRanker",
		"lightgbm.basic.Booster", "lightgbm.sklearn.LGBMClassifier", "lightgbm.sklearn.LGBMRegressor", "lightgbm.sklearn.LGBMRanker",
	}
	for _, t := range torchRebuild {
		l = append(l, "torch._utils."+t)
	}
	for _, d := range torchDtypes {
		l = append(l, "torch."+d)
	}
	for s := range torchStorageSize {
		l = append(l, "torch."+s, "torch.cuda."+s)
		l = append(l, "torch."+strings.TrimSuffix(s, "Storage")+"Tensor", "torch.cuda."+strings.TrimSuffix(s, "Storage")+"Tensor")
	}
	return l
}

var torchRebuild = []string{"_rebuild_parameter", "_rebuild_parameter_with_state", "_rebuild_qtensor",
	"_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_sparse_tensor",
	"_rebuild_meta_tensor_no_storage", "_rebuild_wrapper_subclass", "_rebuild_device_tensor_from_numpy",
	"_rebuild_device_tensor_from_cpu_tensor", "_rebuild_nested_tensor"}

var torchDtypes = []string{"float32", "float", "float64", "double", "float16", "half", "bfloat16", "complex32",
	"chalf", "complex64", "cfloat", "complex128", "cdouble", "uint8", "int8", "int16", "short", "int32", "int",
	"int64", "long", "bool", "qint8", "quint8", "qint32", "quint4x2", "quint2x4", "float8_e4m3fn", "float8_e5m2",
	"float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu", "float4_e2m1fn_x2", "uint16", "uint32", "uint64",
	"uint1", "uint2", "uint3", "uint4", "uint5", "uint6", "uint7", "int1", "int2", "int3", "int4", "int5", "int6", "int7",
	"bits8", "bits16", "bits1x8", "bits2x4", "bits4x2"}

// torchStorageSize is the element size of each legacy typed storage.
var torchStorageSize = map[string]int64{
	"DoubleStorage": 8, "FloatStorage": 4, "HalfStorage": 2, "LongStorage": 8, "IntStorage": 4,
	"ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1, "BoolStorage": 1, "BFloat16Storage": 2,
	"ComplexDoubleStorage": 16, "ComplexFloatStorage": 8, "QUInt8Storage": 1, "QInt8Storage": 1,
	"QInt32Storage": 4, "QUInt4x2Storage": 1, "QUInt2x4Storage": 1, "UntypedStorage": 1,
	"Float8_e4m3fnStorage": 1, "Float8_e5m2Storage": 1,
}

var sklearnEstimatorModule = regexp.MustCompile(`^sklearn\.(linear_model|tree|ensemble|svm|neighbors|preprocessing|decomposition|cluster|naive_bayes|neural_network|pipeline|compose|feature_extraction|feature_selection|impute|calibration|discriminant_analysis|kernel_ridge|isotonic|multiclass|multioutput|mixture|gaussian_process|cross_decomposition|dummy|semi_supervised|kernel_approximation|random_projection|covariance|_loss|model_selection|manifold)(\.[A-Za-z_][A-Za-z0-9_]*)*$`)

var sparseName = regexp.MustCompile(`^[a-z]{3}_(matrix|array)$`)

var className = regexp.MustCompile(`^[A-Z][A-Za-z0-9_]*$`)

// defaultAllowPattern allows families of classes: scikit-learn estimator classes (their
// constructors only store parameters; every callable they hold is itself a pickled import
// judged by this policy), SciPy sparse matrices, and NumPy's dtype classes.
func defaultAllowPattern(module, name string) bool {
	switch {
	case sklearnEstimatorModule.MatchString(module) && className.MatchString(name):
		return true
	case strings.HasPrefix(module, "scipy.sparse") && !strings.Contains(module, "linalg") &&
		sparseName.MatchString(name):
		return true
	case (module == "numpy.dtypes") && strings.HasSuffix(name, "DType") && className.MatchString(name):
		return true
	}
	return false
}
