package proxy

import (
	"errors"

	"github.com/anx-gateway/anx/core/message"
)

// errUnsafeRequest refuses a request that could not be written upstream
// as the same request: a byte in it would end a field, a line or the head
// early on an HTTP/1.1 connection. The front ends refuse such requests
// already (RFC 9113 section 8.2.1, RFC 9114 section 4.2, RFC 9112); this
// is the proxy's own line, so that no front end's gap becomes request
// smuggling on a shared upstream connection.
var errUnsafeRequest = errors.New("proxy: request cannot be forwarded safely")

// checkRequest refuses what must not reach an upstream: a method that is
// not a token, a target or Host with a control byte or space, a field
// whose name is not a token or whose value holds CR, LF or NUL.
func checkRequest(r *message.Request) error {
	if !h1IsToken(r.Method) || !h1ValidTarget(r.Path) || !noSpaceOrControl(r.RawQuery) || !h1ValidHost(r.Host) {
		return errUnsafeRequest
	}
	if !safeFields(&r.Header) || !safeFields(&r.Trailer) {
		return errUnsafeRequest
	}
	return nil
}

func safeFields(h *message.Header) bool {
	for _, f := range h.Fields() {
		if checkOutField(f) != nil {
			return false
		}
	}
	return true
}
