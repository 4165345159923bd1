package event

// CountByType calls add once per distinct type in evs with how many events have it, in order
// of first appearance (a batch holds few types; a metric label lookup per event is not free).
func CountByType(evs []Event, add func(typ string, n int)) {
	var types [8]string
	var counts [8]int
	k := 0
	for i := range evs {
		t := evs[i].Type
		j := 0
		for j < k && types[j] != t {
			j++
		}
		switch {
		case j < k:
			counts[j]++
		case k < len(types):
			types[k], counts[k] = t, 1
			k++
		default:
			add(t, 1) // more distinct types than slots: counted one by one
		}
	}
	for j := 0; j < k; j++ {
		add(types[j], counts[j])
	}
}
