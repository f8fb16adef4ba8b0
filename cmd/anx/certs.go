package main

import "crypto/tls"

// closeACMEConn ends a connection that negotiated ALPN acme-tls/1: the
// handshake itself answered the TLS-ALPN-01 validation (RFC 8737).
func closeACMEConn(c *tls.Conn) { _ = c.Close() }
