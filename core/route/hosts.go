package route

import (
	"bytes"
	"fmt"
	"strings"
)

// Hosts maps host names to values as a Table maps them to sites: an exact
// name first, else a wildcard for the first label ("*.example.com"). Fill
// it with Add, then only Lookup it, from any goroutine. The zero value is
// empty and ready.
type Hosts[T any] struct {
	exact    map[string]T
	wildcard map[string]T // keyed by the suffix after "*."
}

// Add maps host, a name or a wildcard in the form NormalizeHost checks, to
// v. A host that is already mapped is an error.
func (h *Hosts[T]) Add(host string, v T) error {
	name, err := NormalizeHost(host)
	if err != nil {
		return err
	}
	if h.exact == nil {
		h.exact, h.wildcard = map[string]T{}, map[string]T{}
	}
	set := h.exact
	if suffix, ok := strings.CutPrefix(name, "*."); ok {
		set, name = h.wildcard, suffix
	}
	if _, dup := set[name]; dup {
		return fmt.Errorf("route: host %q is claimed twice", host)
	}
	set[name] = v
	return nil
}

// maxHostLen bounds the host names Lookup finds: a DNS name has at most
// 253 bytes.
const maxHostLen = 255

// Lookup returns the value of an authority's host (a port, IPv6 brackets,
// a trailing dot and letter case are ignored). It allocates nothing.
func (h *Hosts[T]) Lookup(authority string) (v T, ok bool) {
	var buf [maxHostLen]byte
	name, fits := appendLower(buf[:0], hostPart(authority))
	if !fits {
		return v, false
	}
	if v, ok := h.exact[string(name)]; ok {
		return v, true
	}
	if _, parent, found := bytes.Cut(name, []byte{'.'}); found {
		if v, ok := h.wildcard[string(parent)]; ok {
			return v, true
		}
	}
	return v, false
}

// hostPart strips the port, the IPv6 brackets and a trailing dot from an
// authority.
func hostPart(authority string) string {
	host := authority
	if strings.HasPrefix(host, "[") {
		if end := strings.IndexByte(host, ']'); end > 0 {
			host = host[1:end]
		}
	} else if i := strings.IndexByte(host, ':'); i >= 0 && i == strings.LastIndexByte(host, ':') {
		host = host[:i] // one colon: name:port; more: a bare IPv6 address
	}
	return strings.TrimSuffix(host, ".")
}

// appendLower appends s in lower case to dst, within dst's capacity: it
// reports false when s does not fit.
func appendLower(dst []byte, s string) ([]byte, bool) {
	if len(s) > cap(dst)-len(dst) {
		return dst, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst, true
}

// hostname is an authority's host in the form Lookup compares: without
// port, brackets and trailing dot, in lower case. It allocates for a host
// with upper-case letters only.
func hostname(authority string) string {
	return strings.ToLower(hostPart(authority))
}
