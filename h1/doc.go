// Package h1 is anx's HTTP/1.1 front end: a request parser, a connection
// state machine and a response writer that turn HTTP/1.0 and HTTP/1.1 on a
// net.Conn into calls of a message.Handler.
//
// # Layers
//
// The code is split so that a later milestone can move it from a goroutine
// per connection onto core/netpoll's epoll loops without rewriting the
// protocol:
//
//   - parse.go and chunked.go know only bytes: scanHead finds the end of a
//     request head in a buffer (or reports that more bytes are needed),
//     parseHead parses a complete head without allocating, and
//     chunkedDecoder decodes chunked content incrementally from whatever
//     bytes are at hand. None of them does I/O.
//   - conn.go, body.go, response.go and out.go hold the connection state
//     machine: they read into a pooled buffer, call the parser, run the
//     handler and frame the response. They do blocking I/O with deadlines
//     today; every place that blocks is one small method (waitIdle,
//     fillHead, fillBody, outBuf.flush) so a reactor can replace it.
//   - server.go accepts connections, tracks them and shuts them down.
//
// # Memory
//
// A connection borrows its read and write buffers from core/pool when a
// request starts and gives them back when it goes idle between requests:
// an idle keep-alive connection holds no buffer. On a plain socket the idle
// wait does not read at all (it waits for readability, see wait_linux.go);
// elsewhere it reads a single byte into the connection struct. The request
// head is converted to one string per request; the method, target and every
// header field are substrings of it, so parsing allocates nothing further,
// and a handler that keeps one of them keeps valid memory.
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
// Serve runs the accept loop in the caller's goroutine and starts one
// goroutine per connection; ServeConn runs a connection in the caller's
// goroutine. A connection's goroutine owns everything in its conn struct
// except the state field, which Shutdown and Close also touch, and the
// net.Conn, which they may close. The handler runs on the connection's
// goroutine and must be done with the request and the response writer when
// it returns. While it runs it may read Request.Body in one goroutine and
// write the response in another (full duplex, as a proxy streams): the
// read side never touches the output, and the one exception, "100
// Continue", is ordered against the response head by a mutex. The response
// writer also has a Flush() error method for streaming handlers, reached by
// a type assertion until core/message defines a Flusher. Shutdown and Close
// run in their callers' goroutines and start none.
package h1
