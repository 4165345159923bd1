package event

import (
	"fmt"
	"strings"
	"testing"
)

func TestMembersAndElements(t *testing.T) {
	var got []string
	err := Members([]byte(` {"a": 1, "b\n": [1, {"x": "y"}], "c": "s" } `), func(k []byte, esc bool, v []byte) error {
		got = append(got, fmt.Sprintf("%s|%v|%s", k, esc, v))
		return nil
	})
	if err != nil || strings.Join(got, ";") != `a|false|1;b\n|true|[1, {"x": "y"}];c|false|"s"` {
		t.Fatalf("members: %q, %v", got, err)
	}
	var els []string
	if err := Elements([]byte(`[1, "two", null, [3]]`), func(v []byte) error { els = append(els, string(v)); return nil }); err != nil ||
		strings.Join(els, ";") != `1;"two";null;[3]` {
		t.Fatalf("elements: %q, %v", els, err)
	}
	for _, bad := range []string{`[]`, `{"a":1} x`, `{"a":}`, `{"a":01}`, `"s"`, ``, strings.Repeat(`{"a":`, 70) + `1` + strings.Repeat(`}`, 70)} {
		if err := Members([]byte(bad), func([]byte, bool, []byte) error { return nil }); err == nil {
			t.Errorf("Members(%q) accepted", bad)
		}
	}
	stop := fmt.Errorf("stop")
	if err := Members([]byte(`{"a":1,"b":2}`), func([]byte, bool, []byte) error { return stop }); err != stop {
		t.Fatalf("the callback's error must come back: %v", err)
	}
}
