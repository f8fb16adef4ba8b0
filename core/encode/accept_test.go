package encode

import "testing"

func TestChoose(t *testing.T) {
	all := DefaultSet
	cases := []struct {
		accept  string
		offered Set
		want    Coding
	}{
		{"", all, Identity},
		{"gzip", all, Gzip},
		{"gzip, deflate, br, zstd", all, Zstd},          // Chrome: ties go to zstd
		{"gzip, deflate, br", all, Brotli},              // Safari
		{"gzip, deflate, br", Set(0).With(Gzip), Gzip},  // br not offered
		{"zstd", Set(0).With(Gzip), Identity},           // nothing offered that is accepted
		{"br;q=1.0, gzip;q=0.8, *;q=0.1", all, Brotli},  // q-values
		{"gzip;q=0.9, zstd;q=0.5", all, Gzip},           // weight beats preference
		{"*", all, Zstd},                                // star covers every coding
		{"*;q=0.5, gzip", all, Gzip},                    // gzip 1 beats zstd 0.5
		{"*, zstd;q=0", all, Brotli},                    // q=0 refuses
		{"zstd;q=0, zstd", all, Identity},               // lowest weight of a repeat counts
		{"identity;q=1, gzip;q=0.5", all, Identity},     // identity strictly higher
		{"identity, gzip", all, Gzip},                   // a tie goes to the coding
		{"identity;q=0, gzip;q=0", all, Identity},       // nothing acceptable: identity anyway
		{"*;q=0", all, Identity},                        // same
		{"GZIP", all, Gzip},                             // case-insensitive
		{"x-gzip", all, Gzip},                           // section 8.4.1.3
		{"gzip;q=1.001", all, Identity},                 // malformed weight: element skipped
		{"gzip;q=0.0001", all, Identity},                // too many digits
		{"gzip ; q=0.5 ,, br;Q=0.6", all, Brotli},       // OWS, empty elements, upper Q
		{"gzip;level=1", all, Identity},                 // a parameter that is not q
		{"compress, deflate", all, Identity},            // codings anx cannot produce
		{"gzip;q=0.001", all, Gzip},                     // lowest non-zero still beats default identity
		{"zstd, br, gzip", Set(0), Identity},            // compression off
		{"zstd;q=0.5, br;q=0.5, gzip;q=0.5", all, Zstd}, // ties at any weight
		{"br;q=0.5, gzip;q=0.5", Set(0).With(Gzip).With(Brotli), Brotli},
	}
	for _, tc := range cases {
		a := ParseAccept(tc.accept)
		if got := a.Choose(tc.offered); got != tc.want {
			t.Errorf("Accept-Encoding %q, offered %08b: got %v, want %v", tc.accept, tc.offered, got, tc.want)
		}
	}
}

func TestChooseInBreaksTiesByTheOrderGiven(t *testing.T) {
	brFirst := []Coding{Brotli, Zstd, Gzip}
	for _, tc := range []struct {
		accept string
		want   Coding
	}{
		{"zstd, br, gzip", Brotli},           // a tie: the order given
		{"*", Brotli},                        // a tie through "*"
		{"br;q=0.5, zstd", Zstd},             // a higher weight still wins
		{"identity;q=1, br;q=0.9", Identity}, // identity by a strictly higher weight
	} {
		a := ParseAccept(tc.accept)
		if got := a.ChooseIn(brFirst, DefaultSet); got != tc.want {
			t.Errorf("ChooseIn(br first) for %q: %s, want %s", tc.accept, got, tc.want)
		}
	}
	if a := ParseAccept("zstd, br"); a.Choose(DefaultSet) != Zstd {
		t.Errorf("Choose for \"zstd, br\": %s, want zstd (the on-the-fly order)", a.Choose(DefaultSet))
	}
}

func TestParseSet(t *testing.T) {
	s, err := ParseSet([]string{"zstd", "gzip"})
	if err != nil || !s.Has(Zstd) || !s.Has(Gzip) || s.Has(Brotli) || s.Has(Identity) {
		t.Errorf("ParseSet(zstd, gzip) = %08b, %v", s, err)
	}
	if s, err := ParseSet(nil); err != nil || s != 0 {
		t.Errorf("ParseSet(nil) = %08b, %v; want the empty set", s, err)
	}
	if _, err := ParseSet([]string{"deflate"}); err == nil {
		t.Error("ParseSet(deflate): no error")
	}
}

func TestCodingNames(t *testing.T) {
	for _, c := range preference {
		got, err := Parse(c.String())
		if err != nil || got != c {
			t.Errorf("Parse(%q) = %v, %v", c.String(), got, err)
		}
		if c.ETagSuffix() == "" {
			t.Errorf("%v has no entity-tag suffix", c)
		}
	}
}

func TestCompressible(t *testing.T) {
	cases := map[string]bool{
		"text/html; charset=utf-8":        true,
		"Text/CSS":                        true,
		"text/event-stream":               true,
		"application/json":                true,
		"application/javascript":          true,
		"application/problem+json":        true,
		"application/atom+xml":            true,
		"image/svg+xml":                   true,
		"application/wasm":                true,
		"font/ttf":                        true,
		"font/otf":                        true,
		"image/png":                       false,
		"image/jpeg":                      false,
		"video/mp4":                       false,
		"application/zip":                 false,
		"application/gzip":                false,
		"font/woff2":                      false,
		"font/woff":                       false,
		"application/octet-stream":        false,
		"application/grpc":                false,
		"application/grpc+proto":          false,
		"":                                false,
		"text":                            false,
		"text/":                           false,
		" application/json ; charset=x":   true,
		"application/vnd.api+json; v=1":   true,
		"multipart/byteranges; boundary=": false,
	}
	for ct, want := range cases {
		if got := Compressible(ct); got != want {
			t.Errorf("Compressible(%q) = %v, want %v", ct, got, want)
		}
	}
}

func TestCompressibleAllocs(t *testing.T) {
	n := testing.AllocsPerRun(100, func() {
		Compressible("application/vnd.api+json; charset=utf-8")
		Compressible("text/html")
	})
	if n != 0 {
		t.Errorf("Compressible allocates %v times, want 0", n)
	}
}

func TestParseAcceptAllocs(t *testing.T) {
	n := testing.AllocsPerRun(100, func() {
		a := ParseAccept("gzip, deflate, br, zstd")
		a.Choose(DefaultSet)
	})
	if n != 0 {
		t.Errorf("ParseAccept and Choose allocate %v times, want 0", n)
	}
}
