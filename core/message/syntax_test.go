package message

import (
	"slices"
	"testing"
)

func TestListSyntax(t *testing.T) {
	for _, tc := range []struct{ in, trimmed, left, skipped string }{
		{"", "", "", ""},
		{" \ta b\t ", "a b", "a b\t ", "a b\t "},
		{", ,\ta, b", ", ,\ta, b", ", ,\ta, b", "a, b"},
	} {
		if got := TrimOWS(tc.in); got != tc.trimmed {
			t.Errorf("TrimOWS(%q) = %q, want %q", tc.in, got, tc.trimmed)
		}
		if got := TrimLeftOWS(tc.in); got != tc.left {
			t.Errorf("TrimLeftOWS(%q) = %q, want %q", tc.in, got, tc.left)
		}
		if got := SkipListSeparators(tc.in); got != tc.skipped {
			t.Errorf("SkipListSeparators(%q) = %q, want %q", tc.in, got, tc.skipped)
		}
	}
	var elements []string
	for rest := "gzip;q=1, ,br"; ; {
		rest = SkipListSeparators(rest)
		if rest == "" {
			break
		}
		var e string
		e, rest = CutListElement(rest)
		elements = append(elements, TrimOWS(e))
	}
	if len(elements) != 2 || elements[0] != "gzip;q=1" || elements[1] != "br" {
		t.Errorf("elements %q, want [gzip;q=1 br]", elements)
	}
	for c := range 256 {
		want := c > 32 && c < 127 && !containsByte(`"(),/:;<=>?@[\]{}`, byte(c))
		if got := IsTokenChar(byte(c)); got != want {
			t.Errorf("IsTokenChar(%q) = %v, want %v", byte(c), got, want)
		}
	}
}

func containsByte(s string, c byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return true
		}
	}
	return false
}

func TestDirectives(t *testing.T) {
	var got []string
	for name, value := range Directives(` no-store,max-age=60 , , stale-if-error="30",private`) {
		got = append(got, name+"|"+value)
	}
	want := []string{"no-store|", "max-age|60", "|", "stale-if-error|\"30\"", "private|"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	for range Directives("a, b") {
		break // stopping early must not panic
	}
}
