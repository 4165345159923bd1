package event

import "sort"

// Kind is the JSON kind a data field must have.
type Kind int

// Field kinds checked at ingestion.
const (
	String Kind = iota
	Number
	Integer
	Bool
	Object
	Array
	StringArray
	NumberArray
	SchemaArray // [{name, type}]
	Any         // any JSON value, including null
)

func (k Kind) String() string {
	return [...]string{"a string", "a number", "an integer", "a boolean", "an object", "an array",
		"an array of strings", "an array of numbers", "an array of {name, type} objects", "any value"}[k]
}

// Field is one documented data field of a type.
type Field struct {
	Name     string
	Kind     Kind
	Required bool
	Enum     []string // allowed values for String fields
	// MaxLen bounds strings (bytes) and arrays (elements); 0 means the default.
	MaxLen int
	// Asset names the asset kind this field identifies, if any (dataset, model, ...).
	Asset string
}

// TypeSpec is the documented minimum of one event type's data.
type TypeSpec struct {
	Type   string
	Fields []Field
}

// vocabulary is v1 of DESIGN.md's event vocabulary. Types are added, never renamed. Required
// fields are those that identify what happened; the other documented fields are type-checked when
// present (see docs/events.md and docs/decisions.md).
var vocabulary = []TypeSpec{
	{"pipewarden.data.batch", []Field{
		{Name: "dataset", Kind: String, Required: true, Asset: "dataset"},
		{Name: "source", Kind: String, Required: true},
		{Name: "rows", Kind: Integer, Required: true},
		{Name: "schema", Kind: SchemaArray, Required: true, MaxLen: 10000},
		{Name: "digest", Kind: String, Required: true},
		{Name: "path", Kind: String},
		{Name: "records", Kind: Array, MaxLen: 100000},
		{Name: "stats", Kind: Object},
	}},
	{"pipewarden.feature.transform", []Field{
		{Name: "pipeline", Kind: String, Required: true, Asset: "pipeline"},
		{Name: "code_digest", Kind: String, Required: true},
		{Name: "actor", Kind: String, Required: true, Asset: "principal"},
		{Name: "approved", Kind: Bool, Required: true},
	}},
	{"pipewarden.training.run", []Field{
		{Name: "run_id", Kind: String, Required: true},
		{Name: "phase", Kind: String, Required: true, Enum: []string{"started", "completed", "failed"}},
		{Name: "actor", Kind: String, Required: true, Asset: "principal"},
		{Name: "config", Kind: Object},
		{Name: "datasets", Kind: StringArray, MaxLen: 10000},
		{Name: "resources", Kind: Object},
		{Name: "model_digest", Kind: String},
		{Name: "project", Kind: String},
	}},
	{"pipewarden.model.artifact", []Field{
		{Name: "model", Kind: String, Required: true, Asset: "model"},
		{Name: "version", Kind: String, Required: true},
		{Name: "digest", Kind: String, Required: true},
		{Name: "action", Kind: String, Required: true, Enum: []string{"registered", "changed", "promoted", "deployed"}},
		{Name: "actor", Kind: String, Required: true, Asset: "principal"},
		{Name: "signed", Kind: Bool},
		{Name: "path", Kind: String},
	}},
	{"pipewarden.model.metric", []Field{
		{Name: "model", Kind: String, Required: true, Asset: "model"},
		{Name: "metric", Kind: String, Required: true},
		{Name: "value", Kind: Number, Required: true},
		{Name: "dataset", Kind: String},
	}},
	{"pipewarden.deploy.change", []Field{
		{Name: "endpoint", Kind: String, Required: true, Asset: "endpoint"},
		{Name: "model_digest", Kind: String, Required: true},
		{Name: "actor", Kind: String, Required: true, Asset: "principal"},
		{Name: "approved", Kind: Bool, Required: true},
	}},
	{"pipewarden.inference.request", []Field{
		{Name: "endpoint", Kind: String, Required: true, Asset: "endpoint"},
		{Name: "client", Kind: String, Required: true, Asset: "client"},
		{Name: "status", Kind: Integer, Required: true},
		{Name: "latency_ms", Kind: Number, Required: true},
		{Name: "features", Kind: NumberArray, MaxLen: 100000},
	}},
	{"pipewarden.access.change", []Field{
		{Name: "actor", Kind: String, Required: true, Asset: "principal"},
		{Name: "principal", Kind: String, Required: true, Asset: "principal"},
		{Name: "resource", Kind: String, Required: true},
		{Name: "role_before", Kind: String, Required: true},
		{Name: "role_after", Kind: String, Required: true},
	}},
	{"pipewarden.access.auth", []Field{
		{Name: "principal", Kind: String, Required: true, Asset: "principal"},
		{Name: "result", Kind: String, Required: true, Enum: []string{"success", "failure"}},
		{Name: "source_ip", Kind: String, Required: true},
	}},
	{"pipewarden.deps.change", []Field{
		{Name: "project", Kind: String, Required: true, Asset: "project"},
		{Name: "lockfile", Kind: String, Required: true},
		{Name: "added", Kind: Array, Required: true},
		{Name: "removed", Kind: Array, Required: true},
		{Name: "changed", Kind: Array, Required: true},
	}},
	{"pipewarden.infra.config", []Field{
		{Name: "resource", Kind: String, Required: true, Asset: "resource"},
		{Name: "field", Kind: String, Required: true},
		{Name: "before", Kind: Any, Required: true},
		{Name: "after", Kind: Any, Required: true},
		{Name: "actor", Kind: String, Required: true, Asset: "principal"},
	}},
	{"pipewarden.infra.network", []Field{
		{Name: "source", Kind: String, Required: true, Asset: "resource"},
		{Name: "destination", Kind: String, Required: true},
		{Name: "port", Kind: Integer, Required: true},
		{Name: "bytes", Kind: Integer, Required: true},
	}},
}

var specByType = func() map[string]*TypeSpec {
	m := make(map[string]*TypeSpec, len(vocabulary))
	for i := range vocabulary {
		m[vocabulary[i].Type] = &vocabulary[i]
	}
	return m
}()

// Lookup returns the spec of a known type.
func Lookup(typ string) (*TypeSpec, bool) {
	s, ok := specByType[typ]
	return s, ok
}

// Types lists the known event types, sorted.
func Types() []string {
	out := make([]string, 0, len(vocabulary))
	for _, s := range vocabulary {
		out = append(out, s.Type)
	}
	sort.Strings(out)
	return out
}
