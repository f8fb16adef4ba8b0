package proxy

import (
	"context"
	"errors"
	"io"

	"github.com/anx-gateway/anx/core/message"
)

// outRequest is a request as it goes to an upstream: the client's request
// after the hop-by-hop fields were removed and the forwarding fields
// added. A transport writes it in its own protocol.
type outRequest struct {
	Method string
	// Target is the origin-form request target: path and query, as the
	// client sent them (still encoded).
	Target string
	// Host is the Host (or :authority) to send.
	Host string
	// Header holds the end-to-end fields to send, without Host,
	// Content-Length, Transfer-Encoding or Connection: the transport
	// frames the body itself.
	Header *message.Header
	// Body is the content; nil or a reader at EOF for none.
	Body io.Reader
	// ContentLength is the length of Body, or -1 when unknown (HTTP/1.1
	// then sends it chunked).
	ContentLength int64
	// Trailer, when not nil, is read after Body returned io.EOF and its
	// fields are sent as trailers (HTTP/1.1: only when chunked).
	Trailer *message.Header
	// Upgrade is the protocol the client asked to switch to (the value of
	// its Upgrade field, "websocket"), or "": an HTTP/1.1 transport then
	// sends "Connection: upgrade" and "Upgrade: <Upgrade>".
	Upgrade string
	// Interim is called for each informational (1xx) response other than
	// 101 that arrives before the final one; nil drops them.
	Interim func(status int, h *message.Header)
}

// inResponse is an upstream's response head, with its body to read.
type inResponse struct {
	Status int
	// Header holds the response's fields as received, hop-by-hop ones
	// included (the handler removes those).
	Header message.Header
	// Body streams the content. Reading it to io.EOF and closing it lets
	// the transport reuse the connection; closing it early discards the
	// connection. Nil for a 101.
	Body io.ReadCloser
	// ContentLength is the declared length, or -1.
	ContentLength int64
	// Trailer is filled once Body returned io.EOF.
	Trailer message.Header
	// Conn is the upstream connection after a 101 Switching Protocols,
	// carrying the new protocol (already-read bytes first); the caller
	// owns and closes it. An HTTP/1.1 transport gives its net.Conn (over
	// plain TCP passing io.Copy's ReaderFrom and WriterTo on to the
	// socket, for splice).
	Conn io.ReadWriteCloser
}

// transport sends requests to one upstream and keeps its connections.
type transport interface {
	// roundTrip sends req and returns the response head. ctx bounds the
	// connection and the wait for the head; the body's reads are bounded
	// by the transport's read timeout. Its errors say, through
	// errors.Is, whether nothing of the request went out (errNotSent),
	// whether a deadline passed (os.ErrDeadlineExceeded or
	// context.DeadlineExceeded), and whether the upstream's answer was
	// malformed (errMalformed).
	roundTrip(ctx context.Context, req *outRequest) (*inResponse, error)
	// closeIdle closes the pooled idle connections; a transport keeps
	// working after it.
	closeIdle()
	// recycle gives back a response roundTrip returned (not a 101's),
	// once the caller is done with it and its fields: its body is closed
	// if it was not, and its memory may serve the next request.
	recycle(resp *inResponse)
}

// Errors a transport's failures wrap, which decide retries and the
// status the client gets.
var (
	// errNotSent: no byte of the request reached the upstream (the
	// connection was refused or timed out, or a pooled connection was
	// found closed first). Any request may be sent again elsewhere.
	errNotSent = errors.New("proxy: request not sent")
	// errMalformed: the upstream's response broke HTTP's rules; it is not
	// passed on and its connection is closed.
	errMalformed = errors.New("proxy: malformed response from upstream")
)
