// Package h1 is anx's HTTP/1.1 front end: a request parser, a connection
// state machine and a response writer that turn HTTP/1.0 and HTTP/1.1, on
// core/netpoll's event loops or on a net.Conn, into calls of a
// message.Handler.
//
// # Two ways to serve
//
// Listen and Start run the server on core/netpoll's epoll loops, one per
// core, which is how anx serves: plain HTTP, or TLS when TLSConfig is set.
// Between the loops and h1 sits the connection layer, tls/onloop: it does
// the TLS handshake, chooses the protocol by ALPN (or, on a plain
// connection, by the HTTP/2 preface) and hands h1, an onloop.Protocol,
// plaintext in and out, so that nothing here depends on encryption.
// Serve (a net.Listener, a goroutine per connection) and ServeConn (one
// net.Conn in the caller's goroutine) remain for other systems and for
// embedding; they share the parser, the body reader and the response
// writer with the loops.
//
// On a loop (loop.go, loopconn.go, loopfile.go) a connection is a small
// loopConn over its onloop.Conn: its phase and a few flags. A request without
// content, whose handler is message.NonBlocking (core/static) or a
// message.LoopServer that takes it (core/proxy, for upstreams it reaches
// from the loop), is served on the loop as its bytes arrive; the decision
// is taken per request (message.ServesOnLoop), so that a routing table (a
// message.Dispatcher) has a site's static files and proxied GETs served
// on the loop and, say, its proxied uploads off it. On the loop the
// loop lends the connection its one exchange (the conn struct that holds
// a request, its body and response writer, reused for every request), the
// head is parsed in place, the handler runs, and the responses to all the
// requests of one read leave in one write. A LoopServer may defer the
// response (message.LoopWriter, deferred.go): the connection keeps its
// exchange, the loop lends the next connection a spare one, reading
// pauses with any pipelined input kept, and the handler finishes the
// response from its own events on the loop (an upstream connection's)
// and calls Done, after which the connection goes on as after any
// response. File bodies go by sendfile on
// plain connections (netpoll queues them and never waits for the disk:
// cold regions are read by a file worker first); over TLS a small file
// in the page cache is copied with the head, a larger one is read,
// encrypted and sent by the layer's pump as the socket drains. A request with
// content, or any request whose handler may block, takes the
// connection off the loop (onloop.Conn.Detach: a net.Conn, or the
// *tls.Conn) to a goroutine that runs the same code as Serve's, with
// blocking reads and deadlines; when that goroutine has no input left it
// gives the connection back. ALPN protocols other than HTTP/1.1 go to
// Protocols on the loop (h2) or to TLSProtocols on a goroutine, as the
// layer decides. Deadlines are the loop's timing wheel: one per
// connection, moved as the phase changes (head, idle, write; a deferred
// response's write timeout only while output is queued); the TLS
// handshake's and the lingering close's are the layer's.
//
// # Optional abilities
//
// The response writer implements, besides message.ResponseWriter and
// message.FileWriter:
//
//   - message.Flusher: Flush sends the head and what is buffered;
//   - message.TrailerWriter: trailer fields follow the last chunk of a
//     chunked response, and are dropped from one framed by
//     Content-Length, to HTTP/1.0, or without content;
//   - message.InterimWriter: 1xx responses to HTTP/1.1 clients (HTTP/1.0
//     ones get none), a 100 at most once per request whether the body
//     reader or the handler sends it;
//   - message.Upgrader: 101 Switching Protocols and the connection handed
//     to a handler running off the loop, which then owns it (see
//     response.Upgrade); over plain TCP the connection splices under
//     io.Copy;
//   - message.Aborter: the connection closes without ending the response
//     cleanly.
//
// Request.Trailer holds the trailer fields of a chunked request body once
// Body has returned io.EOF.
//
// The layers below the loop know only bytes: scanHead finds the end of a
// request head in a buffer (or reports that more bytes are needed),
// parseHead parses a complete head without allocating, and core/chunked's
// Decoder decodes chunked content incrementally. None of them does I/O.
//
// # Memory
//
// An idle keep-alive connection on a loop holds no buffer and no
// goroutine: its netpoll.Conn, its loopConn and, over TLS, its tls.Conn.
// Input that forms complete requests is consumed in the loop's own read
// buffer; only a partial head is kept, in a buffer from core/pool. On the
// loop the head is not copied: the request's strings point into the
// input, valid until the handler returns (which message.Request asks of
// handlers anyway), so a keep-alive request for a cached file allocates
// nothing. On a goroutine the head is converted to one string per
// request, and the method, target and every field are substrings of it.
//
// # Strictness
//
// HTTP/1.1 framing is where request smuggling lives (RFC 9112 section 11.2),
// so the parser refuses, with 400 and a closed connection, whatever two
// implementations could read differently: Transfer-Encoding together with
// Content-Length, any transfer coding but a single "chunked",
// Transfer-Encoding in HTTP/1.0, a Content-Length that is not one plain
// decimal number (lists and repeated fields included), obs-fold, whitespace
// before a colon, control bytes in field values, bare CR anywhere, and
// chunked framing that is not exactly CRLF-delimited. After refusing a
// request the server never reads another one from the same connection.
// Bare LF as the end of a head line is accepted (RFC 9112 section 2.2), as
// nginx and net/http do; inside chunked framing it is not.
//
// # Goroutines
//
// Start starts the loops' goroutines (core/netpoll), which own every
// loopConn and the exchange; a TLS handshake (tls/onloop), a detached
// connection and a connection handed to a TLSProtocols server each run on
// a goroutine of their own, which ends when the handshake ends, when the
// connection goes back to its loop, or when the protocol closes it. Serve runs the accept loop
// in the caller's goroutine and starts one goroutine per connection;
// ServeConn runs a connection in the caller's goroutine. Such a
// connection's goroutine owns everything in its conn struct except the
// state field, which Shutdown and Close also touch, and the net.Conn,
// which they may close. The handler runs on the connection's goroutine
// (or the loop's) and must be done with the request and the response
// writer when it returns. On a goroutine it may read Request.Body in one
// goroutine and write the response in another (full duplex, as a proxy
// streams): the read side never touches the output, and the one
// exception, "100 Continue", is ordered against the response head and
// the interim responses by a mutex. After an Upgrade the connection's
// goroutine ends and the handler's tunnel owns the connection; Shutdown
// waits for it until its context ends, Close closes it. Shutdown and
// Close run in their callers' goroutines and start none.
package h1
