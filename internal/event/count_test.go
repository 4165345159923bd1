package event

import (
	"fmt"
	"testing"
)

func TestCountByType(t *testing.T) {
	var evs []Event
	want := map[string]int{}
	for i := range 100 {
		typ := fmt.Sprintf("t%d", i%11) // more distinct types than countByType's slots
		if i%3 == 0 {
			typ = "common"
		}
		evs = append(evs, Event{Type: typ})
		want[typ]++
	}
	got := map[string]int{}
	calls := 0
	CountByType(evs, func(typ string, n int) { got[typ] += n; calls++ })
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("counts %v, want %v", got, want)
	}
	if calls >= len(evs) {
		t.Fatalf("%d calls for %d events: not aggregated", calls, len(evs))
	}
}
