package certs

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// ErrNotAllowed is returned (wrapped) by Manager.GetCertificate for a name
// the policy does not allow, and for a ClientHello without SNI when neither
// the local address nor a default name can be used.
var ErrNotAllowed = errors.New("certs: name not allowed")

// Policy says for which names the internal CA serves certificates.
type Policy struct {
	// Names are the allowed names: exact DNS names ("localhost",
	// "api.internal"), IP addresses ("127.0.0.1", "::1") and wildcards
	// "*.suffix", which allow any name with exactly one more label
	// ("*.internal" allows "a.internal", not "internal" nor "a.b.internal"),
	// as a wildcard certificate would. Case and a trailing dot are ignored.
	Names []string

	// DefaultName, if set, is served to a ClientHello without SNI whose
	// local address is not an allowed IP, e.g. a client that connected to
	// an IP address. It is allowed by being set.
	DefaultName string
}

// Validate checks every name of the policy.
func (p *Policy) Validate() error {
	_, err := compile(p)
	return err
}

// Manager serves the internal CA's certificates in TLS handshakes, only for
// the names its policy allows. It is immutable and safe for concurrent use;
// to change the policy (on reload), make a new Manager on the same CA, whose
// leaf cache is kept.
type Manager struct {
	ca       *CA
	exact    map[string]struct{} // canonical names and IP addresses
	wildcard map[string]struct{} // suffixes of "*.suffix", canonical
	deflt    string              // canonical DefaultName, or ""
}

// NewManager returns a Manager that issues from ca under policy p.
func NewManager(ca *CA, p Policy) (*Manager, error) {
	if ca == nil {
		return nil, errors.New("certs: NewManager: nil CA")
	}
	m, err := compile(&p)
	if err != nil {
		return nil, err
	}
	m.ca = ca
	return m, nil
}

// compile turns a policy into a Manager without a CA.
func compile(p *Policy) (*Manager, error) {
	m := &Manager{
		exact:    make(map[string]struct{}, len(p.Names)),
		wildcard: make(map[string]struct{}),
	}
	for _, n := range p.Names {
		if suffix, ok := strings.CutPrefix(n, "*."); ok {
			s, isIP, err := canonicalName(suffix)
			if err != nil || isIP {
				return nil, fmt.Errorf("certs: policy: invalid wildcard %q", n)
			}
			m.wildcard[s] = struct{}{}
			continue
		}
		c, _, err := canonicalName(n)
		if err != nil {
			return nil, fmt.Errorf("certs: policy: %w", err)
		}
		m.exact[c] = struct{}{}
	}
	if p.DefaultName != "" {
		c, _, err := canonicalName(p.DefaultName)
		if err != nil {
			return nil, fmt.Errorf("certs: policy: default name: %w", err)
		}
		m.deflt = c
	}
	return m, nil
}

// Allowed reports whether the policy allows a certificate for name, which
// is canonicalized first. The default name is allowed.
func (m *Manager) Allowed(name string) bool {
	c, isIP, err := canonicalName(name)
	return err == nil && m.allowed(c, isIP)
}

// allowed is Allowed for a canonical name.
func (m *Manager) allowed(name string, isIP bool) bool {
	if _, ok := m.exact[name]; ok || name == m.deflt {
		return true
	}
	if isIP {
		return false
	}
	_, parent, ok := strings.Cut(name, ".")
	if !ok {
		return false
	}
	_, ok = m.wildcard[parent]
	return ok
}

// GetCertificate is a tls.Config.GetCertificate hook. With SNI it serves
// the name if allowed. Without SNI it serves the local IP address the
// client connected to if that is allowed, else the default name. Anything
// else fails with an error wrapping ErrNotAllowed, which fails the
// handshake with an alert, and nothing is issued.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if hello.ServerName == "" {
		return m.withoutSNI(hello)
	}
	name, isIP, err := canonicalName(hello.ServerName)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotAllowed, err)
	}
	if !m.allowed(name, isIP) {
		return nil, fmt.Errorf("%w: %q", ErrNotAllowed, name)
	}
	return m.ca.Certificate(name)
}

// withoutSNI picks the certificate for a ClientHello without SNI.
func (m *Manager) withoutSNI(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if addr, ok := localIP(hello.Conn); ok {
		if name := addr.String(); m.allowed(name, true) {
			return m.ca.Certificate(name)
		}
	}
	if m.deflt != "" {
		return m.ca.Certificate(m.deflt)
	}
	return nil, fmt.Errorf("%w: no SNI and no default name", ErrNotAllowed)
}

// localIP returns the local IP address of conn, unmapped and without zone.
// conn is nil for QUIC handshakes.
func localIP(conn net.Conn) (netip.Addr, bool) {
	if conn == nil {
		return netip.Addr{}, false
	}
	var ap netip.AddrPort
	switch a := conn.LocalAddr().(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	default:
		return netip.Addr{}, false
	}
	ip := ap.Addr().Unmap().WithZone("")
	return ip, ip.IsValid()
}
