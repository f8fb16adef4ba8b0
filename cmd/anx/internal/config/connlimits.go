package config

import "strconv"

// ConnLimits bound the client connections anx holds at once, over TCP and
// QUIC alike ([limits] max_conns and max_conns_per_ip); zero means no
// limit. Unlike the rest of [limits], a reload applies them to the
// connections accepted from then on, and the connections open stay
// counted.
type ConnLimits struct {
	// MaxConns bounds the connections of the whole process.
	MaxConns ConnLimit `toml:"max_conns"`
	// MaxConnsPerIP bounds the connections of one client address, checked
	// when a connection is accepted (TCP) or its first packet arrives
	// (QUIC), before any TLS work.
	MaxConnsPerIP ConnLimit `toml:"max_conns_per_ip"`
}

// ConnLimit is a number of connections; 0 means no limit.
type ConnLimit struct{ N int }

// maxConnLimit bounds a ConnLimit: far above what a process can hold
// open, so a larger figure is a typing error.
const maxConnLimit = 1 << 30

// UnmarshalText parses a number of connections: an integer from 0 (no
// limit) to 2^30.
func (c *ConnLimit) UnmarshalText(b []byte) error {
	n, err := strconv.Atoi(string(b))
	if err != nil || n < 0 || n > maxConnLimit {
		return valueError(b, "want a number of connections from 0 (no limit) to %d, got %q", maxConnLimit, b)
	}
	c.N = n
	return nil
}

// withConns returns l with the connection limits cl, so that KeepRestartOnly
// can keep the rest of [limits] and let these change.
func (l Limits) withConns(cl ConnLimits) Limits {
	l.ConnLimits = cl
	return l
}
