package route

import (
	"errors"
	"fmt"
	"strings"

	"github.com/anx-gateway/anx/core/message"
)

// Path is one path route of a site: which request paths it takes and the
// handler that serves them.
type Path struct {
	// Match is a path prefix ("/api/", "/"), or "=" and one exact path
	// ("=/health"). It is compared with the request's normalised path
	// (see NormalizePath), as a plain string prefix: "/api" also takes
	// "/apix", "/api/" does not take "/api".
	Match string
	// StripPrefix removes the matched prefix before Handler sees the
	// request: Handler gets the normalised path without the prefix,
	// starting with "/" ("/api/x?q" with Match "/api/" becomes "/x?q").
	// The stripped path is taken from the normalised path, not from the
	// path as sent, because the match was made on it: "/%61pi/x" and
	// "/api/../api/x" both become "/x". Not allowed with an exact Match.
	StripPrefix bool
	// Handler serves the requests the route takes.
	Handler message.Handler
}

// Routes is a site's ordered path routes: the first route whose Match
// takes a request's path serves it, and Default serves what none takes
// (404 without a Default). It is immutable once built and safe for
// concurrent use. It is a message.Dispatcher, so that a front end can
// run a request whose route never blocks on its event loop and give
// another a goroutine of its own.
type Routes struct {
	routes   []compiled
	fallback message.Handler // nil: 404
	blocking bool            // some handler may wait
}

// compiled is a Path with its Match split and normalised.
type compiled struct {
	prefix  string // the normalised path or prefix
	exact   bool
	handler message.Handler // wrapped in a stripper when StripPrefix
}

// NewRoutes builds a site's path routes; fallback serves what no route
// takes, and may be nil (404). A route without handler, a Match that is
// not a path, or StripPrefix on an exact Match is an error.
func NewRoutes(paths []Path, fallback message.Handler) (*Routes, error) {
	rs := &Routes{fallback: fallback}
	if fallback != nil {
		rs.blocking = !message.IsNonBlocking(fallback)
	}
	for i, p := range paths {
		c, err := compile(p)
		if err != nil {
			return nil, fmt.Errorf("route: path route %d (%q): %w", i+1, p.Match, err)
		}
		rs.routes = append(rs.routes, c)
		rs.blocking = rs.blocking || !message.IsNonBlocking(p.Handler)
	}
	return rs, nil
}

func compile(p Path) (compiled, error) {
	if p.Handler == nil {
		return compiled{}, errors.New("no handler")
	}
	path, exact := strings.CutPrefix(p.Match, "=")
	if !strings.HasPrefix(path, "/") {
		return compiled{}, errors.New("the path must start with \"/\" (or \"=/\" for an exact path)")
	}
	if strings.ContainsAny(path, "?# \t") || hasControl(path) {
		return compiled{}, errors.New("the path may not hold a query, a fragment, a space or a control character")
	}
	if exact && p.StripPrefix {
		return compiled{}, errors.New("strip_prefix does not go with an exact (\"=\") path")
	}
	c := compiled{prefix: NormalizePath(path), exact: exact, handler: p.Handler}
	if strings.HasSuffix(path, "/") && !strings.HasSuffix(c.prefix, "/") {
		c.prefix += "/" // "/a/./" normalises to "/a"; the prefix meant "/a/"
	}
	if p.StripPrefix {
		c.handler = stripper{prefix: c.prefix, handler: p.Handler}
	}
	return c, nil
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

func (c *compiled) takes(clean string) bool {
	if c.exact {
		return clean == c.prefix
	}
	return strings.HasPrefix(clean, c.prefix)
}

// HandlerFor returns the handler that serves r: its route's (wrapped when
// the route strips its prefix), else the default, else one that answers
// 404. It implements message.Dispatcher.
func (rs *Routes) HandlerFor(r *message.Request) message.Handler {
	if len(rs.routes) > 0 {
		clean := NormalizePath(r.Path)
		for i := range rs.routes {
			if rs.routes[i].takes(clean) {
				return rs.routes[i].handler
			}
		}
	}
	if rs.fallback != nil {
		return rs.fallback
	}
	return notFound{}
}

// NonBlocking reports whether every route's handler and the default never
// wait; per request, message.IsNonBlockingFor asks only the one that
// serves it.
func (rs *Routes) NonBlocking() bool { return !rs.blocking }

// Serve passes r to the handler of the first route that takes it.
func (rs *Routes) Serve(w message.ResponseWriter, r *message.Request) {
	rs.HandlerFor(r).Serve(w, r)
}

// stripper serves a StripPrefix route: its handler sees the normalised
// path without the prefix.
type stripper struct {
	prefix  string
	handler message.Handler
}

// stripped returns what the handler of a route with prefix sees of path.
func (s stripper) stripped(path string) string {
	rest := strings.TrimPrefix(NormalizePath(path), s.prefix)
	if !strings.HasPrefix(rest, "/") {
		rest = "/" + rest
	}
	return rest
}

// Serve calls the handler with the stripped path, and gives r its own
// path back when the handler returns.
func (s stripper) Serve(w message.ResponseWriter, r *message.Request) {
	orig := r.Path
	r.Path = s.stripped(orig)
	s.handler.Serve(w, r)
	r.Path = orig
}

// NonBlocking answers for the wrapped handler.
func (s stripper) NonBlocking() bool { return message.IsNonBlocking(s.handler) }

// HandlerFor passes the question on to a wrapped Dispatcher with the
// stripped path, on a copy of r (Dispatchers must not change r).
func (s stripper) HandlerFor(r *message.Request) message.Handler {
	d, ok := s.handler.(message.Dispatcher)
	if !ok {
		return s.handler
	}
	cp := *r
	cp.Path = s.stripped(r.Path)
	if h := d.HandlerFor(&cp); h != nil {
		return h
	}
	return s.handler
}

// notFound answers 404. It has no fields, so that returning it as a
// message.Handler does not allocate.
type notFound struct{}

// NonBlocking reports true.
func (notFound) NonBlocking() bool { return true }

// Serve answers 404.
func (notFound) Serve(w message.ResponseWriter, r *message.Request) {
	Respond(w, r, 404, "404 Not Found\n")
}

// NormalizePath returns the path that routes match a request path
// against, as nginx does before its location matching: percent-escapes
// of unreserved characters (RFC 3986 section 2.3: letters, digits, "-",
// ".", "_", "~") are decoded, "." and ".." segments are resolved (".."
// never climbs above "/") and runs of "/" become one. Other escapes stay
// as they are, so "%2F" is not a separator. A path that does not start
// with "/" ("*") is returned unchanged. A path that needs no change is
// returned as it is, without allocating.
func NormalizePath(p string) string {
	if !strings.HasPrefix(p, "/") || !needsNormalizing(p) {
		return p
	}
	decoded := decodeUnreserved(p)
	segments := make([]string, 0, strings.Count(decoded, "/"))
	parts := strings.Split(decoded[1:], "/")
	for i, seg := range parts {
		last := i == len(parts)-1
		switch seg {
		case "", ".":
			if last {
				segments = append(segments, "") // keep the trailing slash
			}
		case "..":
			if len(segments) > 0 {
				segments = segments[:len(segments)-1]
			}
			if last {
				segments = append(segments, "")
			}
		default:
			segments = append(segments, seg)
		}
	}
	return "/" + strings.Join(segments, "/")
}

// needsNormalizing reports whether p has an escape, an empty segment or a
// dot segment.
func needsNormalizing(p string) bool {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '%':
			return true
		case '/':
			if i+1 < len(p) && p[i+1] == '/' {
				return true
			}
			if rest := p[i+1:]; rest == "." || rest == ".." || strings.HasPrefix(rest, "./") || strings.HasPrefix(rest, "../") {
				return true
			}
		}
	}
	return false
}

// decodeUnreserved decodes the escapes of unreserved characters in p.
func decodeUnreserved(p string) string {
	if !strings.Contains(p, "%") {
		return p
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		if p[i] == '%' && i+2 < len(p) {
			if c, ok := unhexPair(p[i+1], p[i+2]); ok && unreserved(c) {
				b.WriteByte(c)
				i += 2
				continue
			}
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

func unhexPair(hi, lo byte) (byte, bool) {
	h, ok1 := unhex(hi)
	l, ok2 := unhex(lo)
	return h<<4 | l, ok1 && ok2
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// unreserved reports whether c is an unreserved character of RFC 3986.
func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}
