package proxy

import "io"

// ReadFrom copies r to the connection through the connection's own
// ReadFrom when it has one, so that a tunnel's client-to-upstream
// direction splices too: io.Copy(u, client) asks the source's WriteTo
// first, and a TCP source's WriteTo splices only into a ReaderFrom that
// is a socket. Without it, an upstream that sent bytes with its 101 made
// that direction copy through user space.
func (u *upgradedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := u.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{u.Conn}, r)
}
