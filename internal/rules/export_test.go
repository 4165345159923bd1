package rules

// NewReferenceEngine returns an engine that evaluates every rule of an event's type in CEL on
// data decoded in full by decodeData: no literal index, no native decisions, no lazy data. The
// differential tests hold the real engine to it.
func NewReferenceEngine(rs *Ruleset) *Engine {
	e, _ := NewEngine(rs, EngineOptions{})
	e.reference = true
	return e
}
