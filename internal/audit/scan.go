package audit

import "strconv"

// recordHeader pulls the top-level "index" and "kind" out of a stored record without decoding
// it, so verifying a million records does not build a million maps. It is lenient: whatever it
// cannot read gives ok=false and the caller falls back to ParseRecord.
func recordHeader(b []byte) (index int64, kind string, ok bool) {
	index, kind, _, ok = recordFields(b)
	return index, kind, ok
}

// recordFields is recordHeader with the raw "time" string too.
func recordFields(b []byte) (index int64, kind, ts string, ok bool) {
	if len(b) < 2 || b[0] != '{' {
		return 0, "", "", false
	}
	i := 1
	index = -1
	for i < len(b) && b[i] == '"' {
		kEnd := skipString(b, i)
		if kEnd < 0 || kEnd >= len(b) || b[kEnd] != ':' {
			return 0, "", "", false
		}
		key := b[i+1 : kEnd-1]
		vStart := kEnd + 1
		vEnd := skipValue(b, vStart)
		if vEnd < 0 {
			return 0, "", "", false
		}
		switch string(key) {
		case "index":
			n, err := strconv.ParseInt(string(b[vStart:vEnd]), 10, 64)
			if err != nil {
				return 0, "", "", false
			}
			index = n
		case "kind":
			if vEnd-vStart < 2 || b[vStart] != '"' {
				return 0, "", "", false
			}
			kind = string(b[vStart+1 : vEnd-1])
		case "time":
			if vEnd-vStart < 2 || b[vStart] != '"' {
				return 0, "", "", false
			}
			ts = string(b[vStart+1 : vEnd-1])
		}
		i = vEnd
		if i < len(b) && b[i] == ',' {
			i++
		}
	}
	return index, kind, ts, index >= 0 && i == len(b)-1 && b[i] == '}'
}

// skipString returns the offset just past the string starting at b[i] == '"', or -1.
func skipString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// skipValue returns the offset just past the JSON value starting at b[i], or -1.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = skipString(b, j)
				if j < 0 {
					return -1
				}
				j--
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' {
		j++
	}
	if j == i {
		return -1
	}
	return j
}
