//go:build !linux

package netpoll

// Dial fails with ErrUnsupported: the loops need epoll.
func (l *Loop) Dial(network, addr string, h Handler) (*Conn, error) { return nil, ErrUnsupported }
