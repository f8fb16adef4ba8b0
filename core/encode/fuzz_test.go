package encode

import "testing"

// FuzzParseAccept checks, for any field value, that the choice is a
// coding that is offered and that the field does not refuse, or
// identity, and that the parse agrees with itself when the value is
// listed twice (the lowest weight of a repeat counts, so a doubled list
// means the same).
func FuzzParseAccept(f *testing.F) {
	for _, seed := range []string{"", "gzip", "gzip, deflate, br, zstd", "*;q=0", "br;q=0.5, *;q=0.1",
		"identity;q=0", "zstd;q=1.000, gzip;q=0.999", ",,;q=1", "x-gzip;Q=0.3 , *"} {
		f.Add(seed, uint8(DefaultSet))
	}
	f.Fuzz(func(t *testing.T, value string, offered uint8) {
		set := Set(offered) & DefaultSet
		a := ParseAccept(value)
		got := a.Choose(set)
		if got != Identity {
			if !set.Has(got) {
				t.Fatalf("%q: chose %v, which is not offered (%08b)", value, got, set)
			}
			if a.weight(got) <= 0 {
				t.Fatalf("%q: chose %v, which the field refuses", value, got)
			}
			for _, c := range preference {
				if set.Has(c) && a.weight(c) > a.weight(got) {
					t.Fatalf("%q: chose %v over %v, which weighs more", value, got, c)
				}
			}
		}
		doubled := ParseAccept(value + "," + value)
		if doubled != a {
			t.Fatalf("%q: listing it twice changes the parse: %+v vs %+v", value, doubled, a)
		}
	})
}
