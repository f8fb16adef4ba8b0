package certs

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"time"
)

// LeafLifetime is the validity of a leaf certificate (plus an hour of
// backdating). Caddy's internal issuer uses 12 hours because its leaves go
// to other machines through its ACME server, where a short life stands in
// for revocation. anx's leaves never leave the process: they are neither
// written to disk nor handed out, and the intermediate key that could mint
// new ones sits on the same disk, so a shorter life would buy no security.
// Seven days keeps re-issuance rare and tolerates peers whose clocks are
// days off (suspended VMs, devices without NTP).
const LeafLifetime = 7 * 24 * time.Hour

// maxLeaves bounds the leaf cache. A policy of exact names never reaches
// it; a wildcard policy lets clients ask for any number of names, and past
// this bound an arbitrary finished entry is dropped for each new one.
const maxLeaves = 1024

// leafEntry is one name's slot in the leaf cache. The goroutine that
// creates it issues the certificate, sets cert, renewAt and err, then
// closes done; everyone else reads those fields only after done is closed.
type leafEntry struct {
	done    chan struct{}
	cert    *tls.Certificate
	renewAt time.Time // when less than a third of the lifetime remains
	err     error
}

// Certificate returns a certificate for name, a DNS name or an IP address,
// signed by the intermediate, with the chain leaf + intermediate. name is
// lowercased and a trailing dot removed; wildcards are not issued.
//
// Leaves are cached in memory and replaced once less than a third of their
// lifetime remains. Concurrent calls for the same name wait for one
// issuance. Leaves are not persisted: issuing one costs well under a
// millisecond, and keeping their private keys off the disk leaves nothing to
// clean up or to leak; a restarted process issues new ones on demand.
//
// Certificate checks the name's syntax only: which names may be served is
// the Manager's policy.
func (c *CA) Certificate(name string) (*tls.Certificate, error) {
	key, isIP, err := canonicalName(name)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if e, ok := c.leaves[key]; ok {
		select {
		case <-e.done:
			if e.err == nil && c.now().Before(e.renewAt) {
				c.mu.Unlock()
				return e.cert, nil
			}
		default:
			c.mu.Unlock()
			<-e.done
			return e.cert, e.err
		}
	}
	e := &leafEntry{done: make(chan struct{})}
	c.evictLocked()
	c.leaves[key] = e
	c.mu.Unlock()

	e.cert, e.renewAt, e.err = c.issue(key, isIP)
	if e.err != nil {
		c.mu.Lock()
		if c.leaves[key] == e {
			delete(c.leaves, key)
		}
		c.mu.Unlock()
	}
	close(e.done)
	return e.cert, e.err
}

// evictLocked makes room for one entry when the cache is full by dropping
// a finished entry. Go's map iteration starts at a random place, which
// makes the choice random. The caller holds c.mu.
func (c *CA) evictLocked() {
	if len(c.leaves) < maxLeaves {
		return
	}
	for name, e := range c.leaves {
		select {
		case <-e.done:
			delete(c.leaves, name)
			return
		default:
		}
	}
}

// issue signs a new leaf for a canonical name and returns it with the
// instant from which it should be replaced.
func (c *CA) issue(name string, isIP bool) (*tls.Certificate, time.Time, error) {
	inter, interKey, err := c.intermediate()
	if err != nil {
		return nil, time.Time{}, err
	}
	key, err := newKey()
	if err != nil {
		return nil, time.Time{}, err
	}
	now := c.now()
	tmpl := &x509.Certificate{
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(LeafLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	if tmpl.NotAfter.After(inter.NotAfter) {
		tmpl.NotAfter = inter.NotAfter
	}
	if len(name) <= 64 { // the longest CommonName X.509 allows
		tmpl.Subject = pkix.Name{CommonName: name}
	}
	if isIP {
		tmpl.IPAddresses = []net.IP{net.ParseIP(name)}
	} else {
		tmpl.DNSNames = []string{name}
	}
	leaf, err := sign(tmpl, inter, key.Public(), interKey)
	if err != nil {
		return nil, time.Time{}, err
	}
	cert := &tls.Certificate{
		Certificate: [][]byte{leaf.Raw, inter.Raw},
		PrivateKey:  key,
		Leaf:        leaf,
	}
	lifetime := leaf.NotAfter.Sub(leaf.NotBefore)
	return cert, leaf.NotAfter.Add(-lifetime / 3), nil
}
