package rules

import (
	"fmt"
	"strings"
)

// template is a rule's output: text with %{expression} and %field.path placeholders, rendered
// against the event (and corr for correlation rules) when the rule fires.
type template struct {
	parts []tmplPart
}

type tmplPart struct {
	lit string
	x   *expr
}

func (c *compiler) template(m *merged, text string) (*template, *Error) {
	t := &template{}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, tmplPart{lit: lit.String()})
			lit.Reset()
		}
	}
	add := func(src string) *Error {
		x, e := c.expr(m, "output", src, nil, c.lim.DefaultCostLimit)
		if e != nil {
			return e
		}
		flush()
		t.parts = append(t.parts, tmplPart{x: x})
		return nil
	}
	for i := 0; i < len(text); {
		ch := text[i]
		if ch != '%' || i+1 >= len(text) {
			lit.WriteByte(ch)
			i++
			continue
		}
		switch next := text[i+1]; {
		case next == '%':
			lit.WriteByte('%')
			i += 2
		case next == '{':
			end, err := closingBrace(text, i+1)
			if err != nil {
				return nil, m.errAt("output", "output: %v", err)
			}
			if e := add(text[i+2 : end]); e != nil {
				return nil, e
			}
			i = end + 1
		case isIdentStart(next):
			j := i + 1
			for j < len(text) && (isIdentPart(text[j]) || text[j] == '.' && j+1 < len(text) && isIdentStart(text[j+1])) {
				j++
			}
			if e := add(text[i+1 : j]); e != nil {
				return nil, e
			}
			i = j
		default:
			lit.WriteByte(ch)
			i++
		}
	}
	flush()
	return t, nil
}

// closingBrace finds the '}' matching the '{' at text[open], skipping strings and nested braces.
func closingBrace(text string, open int) (int, error) {
	depth := 0
	for i := open; i < len(text); i++ {
		switch text[i] {
		case '"', '\'':
			j, err := skipString(text, i, false)
			if err != nil {
				return 0, err
			}
			i = j - 1
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return i, nil
			}
		}
	}
	return 0, fmt.Errorf("unclosed %%{ at offset %d", open-1)
}

// render evaluates the placeholders; one that fails renders as <error> so a title is never lost.
func (t *template) render(act *activation) string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.x == nil {
			b.WriteString(p.lit)
			continue
		}
		if p.x.path != nil && !act.reference {
			if v, ok := act.value(p.x.path); ok {
				b.WriteString(display(v)) // %data.a.b, read without CEL
				continue
			}
		}
		v, err := p.x.eval(act)
		if err != nil {
			b.WriteString("<error>")
			continue
		}
		b.WriteString(display(native(v)))
	}
	return b.String()
}
