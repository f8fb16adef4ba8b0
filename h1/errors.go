package h1

import "errors"

// A StatusError is a request h1 refuses at the protocol level. The server
// answers it with Status and a short text body, then closes the connection.
// Body reads return one when the request content is malformed or too large,
// so a handler can tell, with errors.As, which status the client earned.
type StatusError struct {
	Status int    // the response status code, 4xx or 5xx
	Reason string // what was wrong, for logs; never sent to the client
}

// Error returns the reason prefixed by the package name.
func (e *StatusError) Error() string { return "h1: " + e.Reason }

// Errors h1 returns to handlers and callers.
var (
	// ErrServerClosed is returned by Serve after Shutdown or Close.
	ErrServerClosed = errors.New("h1: server closed")
	// ErrBodyTooLarge is returned by a request body's Read once the
	// content passes Server.MaxBodyBytes. If the handler has not started
	// its response when it returns, the client gets 413.
	ErrBodyTooLarge = &StatusError{Status: 413, Reason: "request body too large"}
	// ErrContentLength is returned by Write and WriteFile when the
	// handler writes more than the Content-Length it declared. The excess
	// is dropped and the connection is closed after the response.
	ErrContentLength = errors.New("h1: wrote more than the declared Content-Length")
)

// refuse returns a StatusError for status with the given reason.
func refuse(status int, reason string) *StatusError {
	return &StatusError{Status: status, Reason: reason}
}

// badRequest returns a 400 StatusError with the given reason.
func badRequest(reason string) *StatusError { return refuse(400, reason) }
