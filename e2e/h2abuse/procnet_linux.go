package h2abuse

import (
	"fmt"
	"net"
	"os"
	"strings"
)

// ServerReleased reports whether the server has let go of its end of the
// connection: in /proc/net/tcp its socket (local address the server's,
// remote the client's) is gone or orphaned (inode 0, closed by its
// process but still sending what it had queued). It tells a client that
// does not read its socket that the server closed it, which the client
// could not see otherwise: a FIN queued behind unread data never
// arrives. Loopback IPv4 only.
func (c *Conn) ServerReleased() (bool, error) {
	server, client := c.RemoteAddr().(*net.TCPAddr), c.LocalAddr().(*net.TCPAddr)
	table, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return false, fmt.Errorf("h2abuse: %w", err)
	}
	local, remote := procAddr(server), procAddr(client)
	for line := range strings.SplitSeq(string(table), "\n") {
		f := strings.Fields(line)
		if len(f) > 9 && f[1] == local && f[2] == remote {
			return f[9] == "0", nil
		}
	}
	return true, nil
}

// procAddr renders an IPv4 address as /proc/net/tcp does: the address as
// a little-endian 32-bit hex number, a colon, the port in hex.
func procAddr(a *net.TCPAddr) string {
	ip := a.IP.To4()
	if ip == nil {
		return ""
	}
	return fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], a.Port)
}
