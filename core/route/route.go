// Package route maps each request onto the handler that serves it:
// virtual hosts by exact name or "*." wildcard and a default site for any
// other host (Table), then a site's ordered path routes (Routes), and
// small handlers for what is not a file or an upstream (redirects, fixed
// answers, "a file if it exists, else another handler"). It is
// protocol-neutral: h1, h2 and h3 all serve through a Table. Every
// handler here that passes requests on is a message.Dispatcher, so that a
// front end can tell per request whether the handler that will serve it
// may wait.
package route

import (
	"errors"
	"fmt"
	"strings"

	"github.com/anx-gateway/anx/core/message"
)

// Site is one virtual host: the names it answers to and its handler.
type Site struct {
	// Hosts lists exact host names ("example.com", "127.0.0.1") and
	// wildcards of one label ("*.example.com"). A site with no hosts is
	// the default: it answers every host that no other site names.
	Hosts []string
	// Handler serves the site's requests.
	Handler message.Handler
}

// Table routes requests to sites by host. It is immutable once built, so
// one Table serves every connection without locks; a reload builds a new
// one.
type Table struct {
	hosts    Hosts[message.Handler]
	fallback message.Handler
	blocking bool // some site's handler may wait (see message.NonBlocking)
}

// New builds a routing table. Two sites claiming the same host, or two
// default sites, are an error.
func New(sites []Site) (*Table, error) {
	t := &Table{}
	for i, s := range sites {
		if s.Handler == nil {
			return nil, fmt.Errorf("route: site %d has no handler", i)
		}
		if err := t.add(s); err != nil {
			return nil, err
		}
		t.blocking = t.blocking || !message.IsNonBlocking(s.Handler)
	}
	return t, nil
}

func (t *Table) add(s Site) error {
	if len(s.Hosts) == 0 {
		if t.fallback != nil {
			return errors.New("route: more than one site without hosts")
		}
		t.fallback = s.Handler
		return nil
	}
	for _, h := range s.Hosts {
		if err := t.hosts.Add(h, s.Handler); err != nil {
			return err
		}
	}
	return nil
}

// Lookup returns the handler for a request's Host (a port, a trailing dot
// and letter case are ignored), or nil when no site serves it.
func (t *Table) Lookup(host string) message.Handler {
	if h, ok := t.hosts.Lookup(host); ok {
		return h
	}
	return t.fallback
}

// NonBlocking reports whether every site's handler is a
// message.NonBlocking that never waits; the table itself does not. Per
// request, message.IsNonBlockingFor asks only the handler that serves it.
func (t *Table) NonBlocking() bool { return !t.blocking }

// HandlerFor returns the handler of r's site, or one that answers 421
// when no site serves its host. It implements message.Dispatcher.
func (t *Table) HandlerFor(r *message.Request) message.Handler {
	if h := t.Lookup(r.Host); h != nil {
		return h
	}
	return misdirected{}
}

// Serve routes r to its site, or answers 421 Misdirected Request
// (RFC 9110 section 15.5.20) when no site serves its host.
func (t *Table) Serve(w message.ResponseWriter, r *message.Request) {
	t.HandlerFor(r).Serve(w, r)
}

// misdirected answers 421. It has no fields, so that returning it as a
// message.Handler does not allocate.
type misdirected struct{}

// NonBlocking reports true.
func (misdirected) NonBlocking() bool { return true }

// Serve answers 421.
func (misdirected) Serve(w message.ResponseWriter, r *message.Request) {
	Respond(w, r, 421, "421 Misdirected Request: no site for this host\n")
}

// NormalizeHost checks a configured host name or wildcard and returns it
// in the form Lookup compares: lower case, without a trailing dot, IPv6
// without brackets.
func NormalizeHost(h string) (string, error) {
	name := hostname(h)
	if name == "" || strings.ContainsAny(name, "/\\ \t@?#[]") {
		return "", fmt.Errorf("route: bad host %q", h)
	}
	if strings.Contains(strings.TrimPrefix(name, "*."), "*") {
		return "", fmt.Errorf("route: bad host %q: a wildcard stands only for the first label", h)
	}
	return name, nil
}
