package modelscan

import "time"

// Limits bound the work and memory one file may cost. Going over a limit ends the analysis of
// that part of the file with an inconclusive finding; it never allocates what the input claims.
type Limits struct {
	MaxDepth        int           // archives and wrappers nested inside each other
	MaxMembers      int           // entries in one archive
	MaxMemberBytes  int64         // uncompressed bytes of one archive member we parse
	MaxRatio        int64         // uncompressed/compressed ratio of one member we parse
	MaxInMemory     int64         // bytes a nested archive or protobuf may occupy in memory
	MaxOpcodes      int64         // pickle opcodes in one file
	MaxStackDepth   int           // pickle stack and mark-stack entries
	MaxMemo         int           // pickle memo entries
	MaxStringBytes  int64         // one pickle string or bytes argument
	MaxHeaderBytes  int64         // safetensors / npy / GGUF header
	MaxGGUFItems    int64         // GGUF metadata entries and tensors
	MaxScanTime     time.Duration // wall time for one top-level file
	MaxStorageCount int           // legacy PyTorch storages
}

// DefaultLimits are generous enough for real models of tens of GiB.
func DefaultLimits() Limits {
	return Limits{
		MaxDepth:        4,
		MaxMembers:      100_000,
		MaxMemberBytes:  4 << 30,
		MaxRatio:        1000,
		MaxInMemory:     512 << 20,
		MaxOpcodes:      2_000_000_000,
		MaxStackDepth:   1 << 20,
		MaxMemo:         1 << 25,
		MaxStringBytes:  4 << 30,
		MaxHeaderBytes:  100 << 20,
		MaxGGUFItems:    1 << 20,
		MaxScanTime:     10 * time.Minute,
		MaxStorageCount: 1 << 20,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxMembers <= 0 {
		l.MaxMembers = d.MaxMembers
	}
	if l.MaxMemberBytes <= 0 {
		l.MaxMemberBytes = d.MaxMemberBytes
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = d.MaxRatio
	}
	if l.MaxInMemory <= 0 {
		l.MaxInMemory = d.MaxInMemory
	}
	if l.MaxOpcodes <= 0 {
		l.MaxOpcodes = d.MaxOpcodes
	}
	if l.MaxStackDepth <= 0 {
		l.MaxStackDepth = d.MaxStackDepth
	}
	if l.MaxMemo <= 0 {
		l.MaxMemo = d.MaxMemo
	}
	if l.MaxStringBytes <= 0 {
		l.MaxStringBytes = d.MaxStringBytes
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if l.MaxGGUFItems <= 0 {
		l.MaxGGUFItems = d.MaxGGUFItems
	}
	if l.MaxScanTime <= 0 {
		l.MaxScanTime = d.MaxScanTime
	}
	if l.MaxStorageCount <= 0 {
		l.MaxStorageCount = d.MaxStorageCount
	}
	return l
}

// Rule ids of every finding the scanner emits.
const (
	RuleInconclusive       = "modelscan.inconclusive"
	RuleDangerousImport    = "modelscan.pickle.dangerous-import"
	RuleUnverifiedImport   = "modelscan.pickle.unverified-import"
	RuleUnresolvedImport   = "modelscan.pickle.unresolved-import"
	RuleGlobalMutation     = "modelscan.pickle.global-mutation"
	RuleIndirectCall       = "modelscan.pickle.indirect-call"
	RuleTrailingData       = "modelscan.pickle.trailing-data"
	RuleZipHeaderMismatch  = "modelscan.zip.header-mismatch"
	RuleZipFlags           = "modelscan.zip.evasive-flags"
	RuleZipCRC             = "modelscan.zip.bad-crc"
	RuleZipHidden          = "modelscan.zip.hidden-entry"
	RuleZipDuplicate       = "modelscan.zip.duplicate-name"
	RuleZipPrefix          = "modelscan.zip.prefix-data"
	RuleTorchStorage       = "modelscan.torch.storage-bounds"
	RuleNumpyObject        = "modelscan.numpy.object-array"
	RuleNumpyMalformed     = "modelscan.numpy.malformed"
	RuleSafetensors        = "modelscan.safetensors.malformed"
	RuleSafetensorsMeta    = "modelscan.safetensors.suspicious-metadata"
	RuleKerasLambda        = "modelscan.keras.lambda-layer"
	RuleKerasCustom        = "modelscan.keras.custom-object"
	RuleSavedModelOp       = "modelscan.savedmodel.risky-op"
	RuleONNXExternal       = "modelscan.onnx.external-data-path"
	RuleONNXDomain         = "modelscan.onnx.custom-domain"
	RuleGGUFMalformed      = "modelscan.gguf.malformed"
	RuleGGUFTemplate       = "modelscan.gguf.template-injection"
	RuleUnsupportedArchive = "modelscan.archive.unsupported"
)

// RuleDescriptions describe every rule, for SARIF rule metadata.
func RuleDescriptions() map[string]string {
	return map[string]string{
		RuleInconclusive:       "Part of the file could not be analysed (truncated, malformed, encrypted, unknown compression or over a limit); it is not known to be safe.",
		RuleDangerousImport:    "The pickle imports a callable that can run code, touch files or the network, or load another pickle.",
		RuleUnverifiedImport:   "The pickle imports something outside the allowlist; allow it with --allow module.name once verified.",
		RuleUnresolvedImport:   "The pickle imports a name the scanner cannot resolve statically (computed, too long, extension registry).",
		RuleGlobalMutation:     "The pickle mutates a module or class object (sys-module override, attribute poisoning).",
		RuleIndirectCall:       "The pickle calls an object that is not a plain imported callable.",
		RuleTrailingData:       "Bytes follow the last pickle stream that no pickle loader reads.",
		RuleZipHeaderMismatch:  "Local and central ZIP headers disagree; different readers see different files.",
		RuleZipFlags:           "A ZIP entry sets flag bits (encryption, patched data) that make some readers skip it while others load it.",
		RuleZipCRC:             "A ZIP entry's CRC does not match its content; some readers reject it, others load it.",
		RuleZipHidden:          "A ZIP local entry is not listed in the central directory, or the archive has several directories.",
		RuleZipDuplicate:       "Two ZIP entries have the same name; readers disagree on which one is loaded.",
		RuleZipPrefix:          "Data precedes the ZIP archive (a polyglot or self-extracting file).",
		RuleTorchStorage:       "A PyTorch storage record is missing or out of bounds.",
		RuleNumpyObject:        "A NumPy array of dtype object is a pickle; loading it needs allow_pickle=True.",
		RuleNumpyMalformed:     "A NumPy header is malformed or does not match the data size.",
		RuleSafetensors:        "The safetensors header is malformed: size, JSON, dtype/shape versus offsets, overlaps or holes.",
		RuleSafetensorsMeta:    "The safetensors __metadata__ holds values that look like code or serialized objects.",
		RuleKerasLambda:        "A Keras Lambda layer carries Python bytecode that runs when the model is loaded.",
		RuleKerasCustom:        "A Keras layer or object comes from a module outside keras; loading imports that module.",
		RuleSavedModelOp:       "A TensorFlow graph uses an op that reads or writes files or calls back into Python.",
		RuleONNXExternal:       "An ONNX tensor's external data path leaves the model directory.",
		RuleONNXDomain:         "An ONNX node uses a custom operator domain that needs a native library.",
		RuleGGUFMalformed:      "The GGUF header is malformed or inconsistent with the file.",
		RuleGGUFTemplate:       "A GGUF chat template holds template-injection markers (Jinja sandbox escape).",
		RuleUnsupportedArchive: "An archive format the scanner cannot open.",
	}
}

func confidence(rule string) float64 {
	switch rule {
	case RuleDangerousImport, RuleGlobalMutation, RuleKerasLambda, RuleGGUFTemplate:
		return 0.95
	case RuleInconclusive:
		return 0.5
	}
	return 0.8
}
