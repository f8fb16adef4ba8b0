package config

import (
	"fmt"
	"net"
)

// AdminAddr is the admin listener's address (host:port), or empty for
// none (the default).
type AdminAddr struct{ Addr string }

// UnmarshalText checks that the address is host:port.
func (a *AdminAddr) UnmarshalText(b []byte) error {
	if err := checkAdminForm(string(b)); err != nil {
		return valueError(b, "%v", err)
	}
	a.Addr = string(b)
	return nil
}

// checkAdminForm checks that addr is host:port with a port.
func checkAdminForm(addr string) error {
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		return fmt.Errorf("want host:port, such as \"127.0.0.1:2019\", got %q", addr)
	}
	return nil
}

// checkAdmin refuses an admin address that is not loopback unless
// admin_allow_remote is true: the metrics and the status page name every
// site, route and upstream, and have no authentication.
func (c *Config) checkAdmin() error {
	if c.Admin.Addr == "" {
		return nil
	}
	if err := checkAdminForm(c.Admin.Addr); err != nil {
		return err
	}
	host, _, _ := net.SplitHostPort(c.Admin.Addr)
	if c.AdminAllowRemote || isLoopback(host) {
		return nil
	}
	return fmt.Errorf("%q is not a loopback address, and the admin listener has no authentication: use 127.0.0.1 or [::1], or set admin_allow_remote = true", c.Admin.Addr)
}

// isLoopback reports whether host is localhost or a loopback IP ("" and
// "0.0.0.0", every address, are not).
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loadAdmin checks the admin keys of the file at path, naming the line of
// its admin key.
func (c *Config) loadAdmin(path string, lines *keyLines) error {
	if err := c.checkAdmin(); err != nil {
		return fmt.Errorf("%s:%d: key \"admin\": %v", path, lines.topLine("admin"), err)
	}
	return nil
}
