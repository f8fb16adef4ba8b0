package route

import (
	"errors"
	"fmt"
	"strings"

	"github.com/anx-gateway/anx/core/message"
)

// Redirect answers every request with a redirect to To, in which "{uri}"
// stands for the request's path and query as sent ("https://example.com{uri}").
// It never waits.
type Redirect struct {
	// To is the target: an absolute URL or a path, with "{uri}" where
	// the request's path and query go.
	To string
	// Status is 301, 302, 303, 307 or 308; 0 means 308 (which keeps the
	// method and body: RFC 9110 section 15.4.9).
	Status int
}

// Validate reports a target that would make a broken Location field, or
// a status that is not a redirect.
func (rd Redirect) Validate() error {
	switch rd.Status {
	case 0, 301, 302, 303, 307, 308:
	default:
		return fmt.Errorf("route: redirect status %d: want 301, 302, 303, 307 or 308", rd.Status)
	}
	if rd.To == "" {
		return errors.New("route: redirect without a target")
	}
	if strings.ContainsFunc(rd.To, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("route: redirect target %q: a space or control character", rd.To)
	}
	return nil
}

func (rd Redirect) status() int {
	if rd.Status == 0 {
		return 308
	}
	return rd.Status
}

// NonBlocking reports true.
func (rd Redirect) NonBlocking() bool { return true }

// Serve writes the redirect.
func (rd Redirect) Serve(w message.ResponseWriter, r *message.Request) {
	target := rd.To
	if strings.Contains(target, "{uri}") {
		uri := redirectPath(r.Path)
		if r.RawQuery != "" {
			uri += "?" + r.RawQuery
		}
		target = strings.ReplaceAll(target, "{uri}", uri)
	}
	w.Header().Set("Location", target)
	status := rd.status()
	Respond(w, r, status, fmt.Sprintf("%d %s\n", status, redirectText(status)))
}

func redirectText(status int) string {
	switch status {
	case 301:
		return "Moved Permanently"
	case 302:
		return "Found"
	case 303:
		return "See Other"
	case 307:
		return "Temporary Redirect"
	}
	return "Permanent Redirect"
}

// Fixed answers every request with the same plain-text body and status.
// It never waits.
type Fixed struct {
	// Status is the answer's status, 200 to 599; 0 means 200.
	Status int
	// Body is sent as text/plain (not for HEAD, nor for 204 and 304).
	Body string
}

// Validate reports a status out of range.
func (f Fixed) Validate() error {
	if f.Status != 0 && (f.Status < 200 || f.Status > 599) {
		return fmt.Errorf("route: respond status %d: want 200 to 599", f.Status)
	}
	return nil
}

// NonBlocking reports true.
func (f Fixed) NonBlocking() bool { return true }

// Serve writes the answer.
func (f Fixed) Serve(w message.ResponseWriter, r *message.Request) {
	status := f.Status
	if status == 0 {
		status = 200
	}
	Respond(w, r, status, f.Body)
}
