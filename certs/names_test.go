package certs

import (
	"strings"
	"testing"
)

func TestCanonicalName(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" for an error
		isIP bool
	}{
		{"localhost", "localhost", false},
		{"LocalHost.", "localhost", false},
		{"a-b.c_d.internal", "a-b.c_d.internal", false},
		{"xn--bcher-kva.example", "xn--bcher-kva.example", false},
		{"127.0.0.1", "127.0.0.1", true},
		{"::FFFF:127.0.0.1", "127.0.0.1", true},
		{"2001:DB8::1", "2001:db8::1", true},
		{"fe80::1%eth0", "", false},
		{"", "", false},
		{".", "", false},
		{"a..b", "", false},
		{"a.b..", "", false},
		{"*.a", "", false},
		{"bücher.example", "", false},
		{"-a", "", false},
		{strings.Repeat("a", 64), "", false},
		{strings.Repeat("a", 63), strings.Repeat("a", 63), false},
	}
	for _, tt := range tests {
		got, isIP, err := canonicalName(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("canonicalName(%q) got %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want || isIP != tt.isIP {
			t.Errorf("canonicalName(%q) got %q %v %v, want %q %v", tt.in, got, isIP, err, tt.want, tt.isIP)
		}
	}
}

// FuzzCanonicalName checks that a canonical name is its own canonical form
// and holds no upper case and no trailing dot.
func FuzzCanonicalName(f *testing.F) {
	for _, s := range []string{"localhost", "A.B.", "::1", "::ffff:1.2.3.4", "a_b-c.d", "fe80::1%x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		c, isIP, err := canonicalName(name)
		if err != nil {
			return
		}
		again, againIP, err := canonicalName(c)
		if err != nil || again != c || againIP != isIP {
			t.Errorf("canonicalName(%q) = %q, whose canonical form is %q %v %v", name, c, again, againIP, err)
		}
		if strings.ToLower(c) != c || strings.HasSuffix(c, ".") {
			t.Errorf("canonicalName(%q) = %q, not lowercase or ends with a dot", name, c)
		}
	})
}
