package cvss

import "fmt"

// V4 computes the CVSS v4.0 base score. Not implemented yet.
func V4(vector string) (float64, error) {
	return 0, fmt.Errorf("cvss vector %q: CVSS v4.0 scoring not implemented", vector)
}
