package limit

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/anx-gateway/anx/core/message"
)

// KeyKind is what a limit counts requests by.
type KeyKind uint8

// The kinds of keys.
const (
	ClientIP  KeyKind = iota // the client's address, as trusted_proxies yields it
	HeaderKey                // the value of a request header field
	PathKey                  // the request's path, as received, without the query
	Global                   // one bucket for every request of the route
)

// Key is what a limit counts requests by: a kind, and for HeaderKey the
// field's name.
type Key struct {
	Kind   KeyKind
	Header string // the field's name, for HeaderKey
}

// ParseKey parses "client_ip", "header:NAME", "path" or "global".
func ParseKey(s string) (Key, error) {
	switch s {
	case "client_ip":
		return Key{Kind: ClientIP}, nil
	case "path":
		return Key{Kind: PathKey}, nil
	case "global":
		return Key{Kind: Global}, nil
	}
	if name, ok := strings.CutPrefix(s, "header:"); ok {
		if !isToken(name) {
			return Key{}, fmt.Errorf("limit: key %q: %q is not a header field name", s, name)
		}
		return Key{Kind: HeaderKey, Header: name}, nil
	}
	return Key{}, fmt.Errorf("limit: key %q: want \"client_ip\", \"header:NAME\", \"path\" or \"global\"", s)
}

// String returns the key as ParseKey reads it.
func (k Key) String() string {
	switch k.Kind {
	case HeaderKey:
		return "header:" + k.Header
	case PathKey:
		return "path"
	case Global:
		return "global"
	}
	return "client_ip"
}

// isToken reports whether s is an RFC 9110 token, as a field name is.
func isToken(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return r <= ' ' || r >= 0x7f || strings.ContainsRune("\"(),/:;<=>?@[\\]{}", r)
	})
}

// of returns r's key on l, and false when r has none: a header key whose
// field is absent or empty, as nginx does not account a request whose key
// is empty.
func (k Key) of(l *Limiter, r *message.Request, trusted []netip.Prefix) (uint64, bool) {
	switch k.Kind {
	case HeaderKey:
		v := r.Header.Get(k.Header)
		return l.StringKey(v), v != ""
	case PathKey:
		return l.StringKey(r.Path), true
	case Global:
		return 0, true
	}
	return l.AddrKey(message.ClientAddr(r, trusted)), true
}
