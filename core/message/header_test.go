package message

import (
	"slices"
	"testing"
)

func TestHeaderLookupsIgnoreCase(t *testing.T) {
	var h Header
	h.Add("Accept-Encoding", "gzip")
	h.Add("accept-encoding", "br;q=0.9")
	h.Add("Host", "example.com")
	if got, want := h.Get("ACCEPT-ENCODING"), "gzip"; got != want {
		t.Errorf("Get = %q, want %q", got, want)
	}
	if got, want := slices.Collect(h.Values("accept-Encoding")), []string{"gzip", "br;q=0.9"}; !slices.Equal(got, want) {
		t.Errorf("Values = %q, want %q", got, want)
	}
	if got := h.Count("accept-encoding"); got != 2 {
		t.Errorf("Count = %d, want 2", got)
	}
	if h.Has("Etag") {
		t.Errorf("Has(Etag) = true on a header without it")
	}
}

func TestHeaderSetReplacesAllAndKeepsOrder(t *testing.T) {
	var h Header
	h.Add("A", "1")
	h.Add("B", "2")
	h.Add("a", "3")
	h.Add("C", "4")
	h.Set("A", "x")
	want := []Field{{"A", "x"}, {"B", "2"}, {"C", "4"}}
	if got := h.Fields(); !slices.Equal(got, want) {
		t.Errorf("after Set: %v, want %v", got, want)
	}
	h.Set("D", "5")
	if got := h.Get("d"); got != "5" {
		t.Errorf("Set of a new name: Get = %q, want 5", got)
	}
	h.Del("b")
	want = []Field{{"A", "x"}, {"C", "4"}, {"D", "5"}}
	if got := h.Fields(); !slices.Equal(got, want) {
		t.Errorf("after Del: %v, want %v", got, want)
	}
}

func TestHeaderResetKeepsStorage(t *testing.T) {
	var h Header
	for range 8 {
		h.Add("X", "y")
	}
	h.Reset()
	if h.Len() != 0 {
		t.Fatalf("Len after Reset = %d", h.Len())
	}
	allocs := testing.AllocsPerRun(100, func() {
		h.Reset()
		for range 8 {
			h.Add("X", "y")
		}
	})
	if allocs != 0 {
		t.Errorf("refilling a reset header allocates %v times, want 0", allocs)
	}
}

func TestBodyAllowed(t *testing.T) {
	for status, want := range map[int]bool{100: false, 200: true, 204: false, 206: true, 304: false, 404: true} {
		if got := BodyAllowed(status); got != want {
			t.Errorf("BodyAllowed(%d) = %v, want %v", status, got, want)
		}
	}
}

func TestConnectionSpecific(t *testing.T) {
	for name, want := range map[string]bool{
		"Connection": true, "keep-alive": true, "PROXY-CONNECTION": true, "Transfer-Encoding": true, "upgrade": true,
		"Content-Length": false, "TE": false, "Upgrade-Insecure-Requests": false, "Connections": false, "": false,
	} {
		if got := ConnectionSpecific(name); got != want {
			t.Errorf("ConnectionSpecific(%q) = %v, want %v", name, got, want)
		}
	}
}
