package route

import (
	"strings"
	"testing"
)

func TestHostsLookup(t *testing.T) {
	var h Hosts[string]
	for host, v := range map[string]string{"a.test": "a", "[::1]": "b", "*.Example.com.": "wild"} {
		if err := h.Add(host, v); err != nil {
			t.Fatal(err)
		}
	}
	for authority, want := range map[string]string{
		"a.test": "a", "A.Test:8080": "a", "a.test.": "a", "[::1]:443": "b", "::1": "b",
		"x.example.com": "wild", "X.EXAMPLE.COM:1": "wild", "example.com": "", "y.x.example.com": "",
		"other.test": "", "": "", strings.Repeat("a", 300): "",
	} {
		got, ok := h.Lookup(authority)
		if got != want || ok != (want != "") {
			t.Errorf("%q: got %q, %v; want %q", authority, got, ok, want)
		}
	}
	if allocs := testing.AllocsPerRun(100, func() { h.Lookup("X.Example.COM:8443") }); allocs != 0 {
		t.Errorf("Lookup allocates %.1f times", allocs)
	}
	if err := h.Add("A.TEST.", "again"); err == nil || !strings.Contains(err.Error(), "claimed twice") {
		t.Errorf("a host added twice: %v, want an error", err)
	}
	if err := h.Add("a b", "bad"); err == nil {
		t.Error("a bad host was added")
	}
	var empty Hosts[int]
	if v, ok := empty.Lookup("a.test"); ok || v != 0 {
		t.Errorf("the empty Hosts found %d", v)
	}
}
