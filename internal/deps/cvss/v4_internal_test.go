package cvss

import "testing"

// The table must hold exactly the valid MacroVectors: EQ1 0-2, EQ2 0-1, EQ3 0-2, EQ4 0-2, EQ5
// 0-2, EQ6 0-1, without EQ3 2 with EQ6 0; and scores in 0..10.
func TestMacroTableShape(t *testing.T) {
	n := 0
	for e1 := 0; e1 < 3; e1++ {
		for e2 := 0; e2 < 2; e2++ {
			for e3 := 0; e3 < 3; e3++ {
				for e4 := 0; e4 < 3; e4++ {
					for e5 := 0; e5 < 3; e5++ {
						for e6 := 0; e6 < 2; e6++ {
							k := macroLevels{e1, e2, e3, e4, e5, e6}.key()
							s, ok := macroScores[k]
							if e3 == 2 && e6 == 0 {
								if ok {
									t.Errorf("impossible MacroVector %s has a score", k)
								}
								continue
							}
							if !ok || s <= 0 || s > 10 {
								t.Errorf("MacroVector %s: score %v, present %v", k, s, ok)
							}
							n++
						}
					}
				}
			}
		}
	}
	if n != 270 || len(macroScores) != 270 {
		t.Errorf("table has %d entries, %d valid MacroVectors; want 270", len(macroScores), n)
	}
}
