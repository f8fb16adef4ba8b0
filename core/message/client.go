package message

import (
	"net/netip"
	"strings"
)

// The client address that trusted_proxies yields, shared by the access
// log and the rate limiter.

// ClientAddr returns the client of r: its peer's address, or, when the peer is
// a trusted proxy that sent X-Forwarded-For, the address that field names
// nearest to anx that is not itself a trusted proxy (nginx's real_ip with
// real_ip_recursive on). An element that is not an address ends the walk.
func ClientAddr(r *Request, trusted []netip.Prefix) netip.Addr {
	addr := r.RemoteAddr.Addr().Unmap()
	if !IsTrusted(addr, trusted) {
		return addr
	}
	fields := r.Header.Fields()
	for i := len(fields) - 1; i >= 0; i-- {
		if !EqualFold(fields[i].Name, "X-Forwarded-For") {
			continue
		}
		next, done := walkForwardedFor(fields[i].Value, addr, trusted)
		if done {
			return next
		}
		addr = next
	}
	return addr
}

// walkForwardedFor walks one X-Forwarded-For value from its end while the
// hops are trusted. It returns the last hop it reached and whether the
// walk ended there (an untrusted hop, or one that is no address).
func walkForwardedFor(list string, addr netip.Addr, trusted []netip.Prefix) (netip.Addr, bool) {
	for list != "" {
		var elem string
		if i := strings.LastIndexByte(list, ','); i >= 0 {
			list, elem = list[:i], list[i+1:]
		} else {
			list, elem = "", list
		}
		elem = strings.TrimSpace(elem)
		if elem == "" {
			continue
		}
		hop, ok := parseHop(elem)
		if !ok {
			return addr, true
		}
		addr = hop
		if !IsTrusted(addr, trusted) {
			return addr, true
		}
	}
	return addr, false
}

// parseHop parses an X-Forwarded-For element: an address, or an address
// with a port.
func parseHop(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Zone() == "" {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// IsTrusted reports whether addr is in one of the trusted prefixes.
func IsTrusted(addr netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
