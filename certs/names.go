package certs

import (
	"fmt"
	"net/netip"
	"strings"
)

// maxNameLen is the longest DNS name, in presentation form without the
// trailing dot.
const maxNameLen = 253

// canonicalName returns the form of a DNS name or IP address under which
// certificates are issued, cached and allowed: lowercase, without a
// trailing dot, and an IP address in netip's form (IPv4-mapped IPv6
// addresses unmapped). It reports whether the name is an IP address.
func canonicalName(name string) (string, bool, error) {
	n := strings.TrimSuffix(strings.ToLower(name), ".")
	if addr, err := netip.ParseAddr(n); err == nil {
		if addr.Zone() != "" {
			return "", false, fmt.Errorf("certs: invalid name %q: IP address with a zone", name)
		}
		return addr.Unmap().String(), true, nil
	}
	if err := checkHostname(n); err != nil {
		return "", false, fmt.Errorf("certs: invalid name %q: %w", name, err)
	}
	return n, false, nil
}

// checkHostname checks a lowercase DNS name: at most 253 bytes of labels of
// 1 to 63 letters, digits, hyphens and underscores, no label starting or
// ending with a hyphen. Underscores are allowed because internal names use
// them and crypto/x509 accepts them.
func checkHostname(name string) error {
	if name == "" {
		return fmt.Errorf("empty")
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("longer than %d bytes", maxNameLen)
	}
	for label := range strings.SplitSeq(name, ".") {
		if err := checkLabel(label); err != nil {
			return err
		}
	}
	return nil
}

// checkLabel checks one label of a lowercase DNS name.
func checkLabel(label string) error {
	if label == "" || len(label) > 63 {
		return fmt.Errorf("label %q is empty or longer than 63 bytes", label)
	}
	if label[0] == '-' || label[len(label)-1] == '-' {
		return fmt.Errorf("label %q starts or ends with a hyphen", label)
	}
	for i := 0; i < len(label); i++ {
		c := label[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("label %q has the byte %q", label, c)
		}
	}
	return nil
}

// Public reports whether a canonical DNS name can get a certificate from a
// public CA: it has at least two labels, is not an IP address and is not
// under a reserved top-level name: RFC 6761's test, example, invalid and
// localhost, RFC 6762's local, RFC 8375's home.arpa, ICANN's internal.
func Public(name string) bool {
	if _, isIP, err := canonicalName(name); err != nil || isIP || !strings.Contains(name, ".") {
		return false
	}
	if name == "home.arpa" || strings.HasSuffix(name, ".home.arpa") {
		return false
	}
	switch name[strings.LastIndexByte(name, '.')+1:] {
	case "test", "example", "invalid", "localhost", "local", "internal":
		return false
	}
	return true
}

// isLocalhost reports whether a canonical name is localhost or under it.
func isLocalhost(name string) bool {
	return name == "localhost" || strings.HasSuffix(name, ".localhost")
}
