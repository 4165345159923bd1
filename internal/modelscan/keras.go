package modelscan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/pipewarden/pipewarden/internal/finding"
)

// looksKerasJSON reports whether head starts a JSON object that names a Keras class
// (config.json of a .keras archive).
func looksKerasJSON(head []byte) bool {
	t := bytes.TrimLeft(head, " \t\r\n")
	return len(t) > 0 && t[0] == '{' && bytes.Contains(head, []byte(`"class_name"`))
}

func (j *job) scanKerasJSON(src *source) {
	rc, err := src.stream()
	if err != nil {
		j.inconclusive("keras config", err)
		return
	}
	defer rc.Close()
	var v any
	dec := json.NewDecoder(&limitReader{r: rc, n: j.s.lim.MaxInMemory})
	if err := dec.Decode(&v); err != nil {
		j.inconclusive("keras config", fmt.Errorf("invalid JSON: %w", err))
		return
	}
	j.checkKerasConfig(v, 0)
}

// kerasModules are the module prefixes Keras itself and its official add-ons serialize.
var kerasModules = []string{"keras", "tf_keras", "tensorflow.keras", "tensorflow.python.keras", "keras_hub", "keras_nlp", "keras_cv"}

// checkKerasConfig walks a Keras model config: Lambda layers carry bytecode; objects from
// modules outside Keras import that module when the model loads. Nested models are walked like
// any other layer.
func (j *job) checkKerasConfig(v any, depth int) {
	if depth > 256 {
		j.inconclusive("keras config", limitErr("config nested deeper than 256"))
		return
	}
	switch t := v.(type) {
	case []any:
		for _, x := range t {
			j.checkKerasConfig(x, depth+1)
		}
	case map[string]any:
		cls, _ := t["class_name"].(string)
		cfg, _ := t["config"].(map[string]any)
		name := ""
		if cfg != nil {
			name, _ = cfg["name"].(string)
		}
		switch cls {
		case "Lambda", "__lambda__":
			j.add(RuleKerasLambda, finding.Critical, "Keras Lambda layer with embedded code", map[string]any{"layer": name})
		}
		if mod, ok := t["module"].(string); ok && mod != "" && !kerasModule(mod) {
			sev := finding.High
			if v, _ := dangerous(mod); v == Dangerous {
				sev = finding.Critical
			}
			j.add(RuleKerasCustom, sev, "Keras object from module "+mod, map[string]any{"class": cls, "layer": name,
				"registered_name": t["registered_name"]})
		}
		for _, x := range t {
			j.checkKerasConfig(x, depth+1)
		}
	case string:
		// Nested configs are sometimes JSON inside a string (HDF5 model_config, keras_metadata).
		if len(t) > 2 && t[0] == '{' && strings.Contains(t, `"class_name"`) {
			var inner any
			if json.Unmarshal([]byte(t), &inner) == nil {
				j.checkKerasConfig(inner, depth+1)
			}
		}
	}
}

func kerasModule(m string) bool {
	for _, k := range kerasModules {
		if m == k || strings.HasPrefix(m, k+".") {
			return true
		}
	}
	return m == "builtins" // dtype policies and plain containers
}

// scanHDF5 finds the Keras model config in an HDF5 file. Rather than implementing HDF5, it
// searches the bytes for the JSON objects the model_config and training_config attributes hold
// (h5py stores them as contiguous fixed-length strings) and checks each. A file that mentions
// model_config but yields no parseable config is inconclusive.
func (j *job) scanHDF5(src *source) {
	ra, size, err := j.readerAtOf(src)
	if err != nil {
		j.inconclusive("hdf5 file", err)
		return
	}
	const chunk = 4 << 20
	pat := []byte(`{"class_name"`)
	sawAttr, parsed := false, false
	buf := make([]byte, chunk+len(pat))
	skipUntil := int64(0)
	for off := int64(0); off < size; off += chunk {
		if err := j.checkTime(); err != nil {
			j.inconclusive("hdf5 file", err)
			return
		}
		n, _ := ra.ReadAt(buf, off)
		b := buf[:n]
		if bytes.Contains(b, []byte("model_config")) {
			sawAttr = true
		}
		for i := 0; ; {
			k := bytes.Index(b[i:], pat)
			if k < 0 {
				break
			}
			at := off + int64(i+k)
			i += k + 1
			if at < skipUntil {
				continue
			}
			dec := json.NewDecoder(io.NewSectionReader(ra, at, min(size-at, j.s.lim.MaxHeaderBytes)))
			var v any
			if dec.Decode(&v) != nil {
				continue
			}
			parsed = true
			skipUntil = at + dec.InputOffset()
			j.checkKerasConfig(v, 0)
		}
	}
	if sawAttr && !parsed {
		j.inconclusive("hdf5 file", fmt.Errorf("model_config attribute present but not readable as JSON"))
	}
}
