package h3

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// listeners are the QUIC listeners Serve opened, on transports of their
// own, so that Shutdown decides what becomes of a connection that
// completes its handshake as the listener closes. quic-go's own Serve
// leaves such a connection queued, never served and never closed: its
// client waits for its idle timeout (seen in binary upgrades under load,
// where a handshake can be slow).
// Here every connection the listener gives is served, or, once Shutdown
// has begun, closed with H3_REQUEST_REJECTED, which tells the client that
// its requests were not processed and may go again on a new connection
// (quic-go's client does so).
type listeners struct {
	mu     sync.Mutex // guards the fields below
	closed bool
	open   []*quic.EarlyListener
	trs    []*quic.Transport
}

// listen opens a QUIC listener on pc for the server, unless it is closing.
func (s *Server) listen(pc net.PacketConn) (*quic.EarlyListener, error) {
	l := &s.lns
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrServerClosed
	}
	// No StatelessResetKey: a packet of a connection this process does not
	// know is dropped, never answered with a reset (see cmd/anx's upgrade).
	tr := &quic.Transport{Conn: pc, ConnectionIDGenerator: s.idGenerator(), ConnContext: s.connContext()}
	ln, err := tr.ListenEarly(http3.ConfigureTLSConfig(s.TLSConfig), s.srv.QUICConfig)
	if err != nil {
		return nil, fmt.Errorf("h3: %w", err)
	}
	l.open = append(l.open, ln)
	l.trs = append(l.trs, tr)
	return ln, nil
}

// acceptLoop serves every connection ln gives, each on a goroutine that
// ends with it, until ln is closed.
func (s *Server) acceptLoop(ln *quic.EarlyListener) error {
	for {
		conn, err := ln.Accept(context.Background())
		if err != nil {
			if s.lns.isClosed() {
				return ErrServerClosed
			}
			return fmt.Errorf("h3: %w", err)
		}
		go s.serveConn(conn)
	}
}

// serveConn serves one connection, or rejects it when the server has
// begun to shut down.
func (s *Server) serveConn(conn *quic.Conn) {
	if err := s.srv.ServeQUICConn(conn); errors.Is(err, http.ErrServerClosed) {
		_ = conn.CloseWithError(quic.ApplicationErrorCode(http3.ErrCodeRequestRejected), "shutting down")
	}
}

// isClosed reports whether closeListeners has run.
func (l *listeners) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// closeListeners stops accepting: Initial packets are dropped from now
// on; a connection whose handshake was under way still comes out of
// Accept and is served or rejected.
func (l *listeners) closeListeners() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for _, ln := range l.open {
		_ = ln.Close()
	}
}

// closeTransports ends the transports once every connection is closed;
// the sockets stay open (Serve's caller owns them).
func (l *listeners) closeTransports() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, tr := range l.trs {
		_ = tr.Close()
	}
}
