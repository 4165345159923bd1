package alert

import (
	"sort"
	"strconv"
	"strings"
	"time"
)

// route is a compiled routing-tree node with inherited settings resolved.
type route struct {
	id             string // path in the tree: "0", "0.1", "0.1.0"
	receiver       string
	matchers       Matchers
	groupBy        []string // sorted
	groupAll       bool
	groupWait      time.Duration
	groupInterval  time.Duration
	repeatInterval time.Duration
	cont           bool
	responses      []string
	children       []*route
}

// compileRoute builds the tree; the configuration was validated.
func compileRoute(r *Route, parent *route, id string) *route {
	n := &route{id: id, receiver: r.Receiver, cont: r.Continue, responses: r.Responses}
	n.matchers, _ = ParseMatchers(r.Matchers)
	if parent != nil {
		n.groupBy, n.groupAll = parent.groupBy, parent.groupAll
		n.groupWait, n.groupInterval, n.repeatInterval = parent.groupWait, parent.groupInterval, parent.repeatInterval
		if n.receiver == "" {
			n.receiver = parent.receiver
		}
	} else {
		n.groupWait, n.groupInterval, n.repeatInterval = DefaultGroupWait, DefaultGroupInterval, DefaultRepeatInterval
	}
	if r.GroupBy != nil {
		n.groupBy, n.groupAll = nil, false
		for _, l := range r.GroupBy {
			if l == "..." {
				n.groupAll = true
				continue
			}
			n.groupBy = append(n.groupBy, l)
		}
		sort.Strings(n.groupBy)
	}
	if r.GroupWait > 0 {
		n.groupWait = r.GroupWait
	}
	if r.GroupInterval > 0 {
		n.groupInterval = r.GroupInterval
	}
	if r.RepeatInterval > 0 {
		n.repeatInterval = r.RepeatInterval
	}
	for i := range r.Routes {
		n.children = append(n.children, compileRoute(&r.Routes[i], n, id+"."+strconv.Itoa(i)))
	}
	return n
}

// match returns the routes that take an alert with these labels, Alertmanager's way.
func (n *route) match(labels map[string]string) []*route {
	if !n.matchers.Matches(labels) {
		return nil
	}
	var out []*route
	for _, c := range n.children {
		m := c.match(labels)
		out = append(out, m...)
		if len(m) > 0 && !c.cont {
			break
		}
	}
	if len(out) == 0 {
		out = []*route{n}
	}
	return out
}

// groupLabels returns the labels an alert is grouped by on this route, and the group key.
func (n *route) groupLabels(labels map[string]string) (map[string]string, string) {
	var b strings.Builder
	b.WriteString(n.id)
	b.WriteString(":{")
	out := map[string]string{}
	keys := n.groupBy
	if n.groupAll {
		keys = sortedKeys(labels)
	}
	first := true
	for _, k := range keys {
		v, ok := labels[k]
		if !ok {
			continue
		}
		out[k] = v
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(v))
	}
	b.WriteByte('}')
	return out, b.String()
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
