package route

import (
	"net"
	"strconv"
	"strings"

	"github.com/anx-gateway/anx/core/message"
)

// Respond writes a short plain-text answer with the given status. The body
// is omitted for HEAD and for statuses that carry none.
func Respond(w message.ResponseWriter, r *message.Request, status int, body string) {
	h := w.Header()
	if !message.BodyAllowed(status) {
		w.WriteHeader(status)
		return
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if r.Method != "HEAD" {
		_, _ = w.Write([]byte(body))
	}
}

// RedirectHTTPS answers every request with a permanent redirect to the
// same host, path and query over HTTPS (308, so that the method and body
// are kept: RFC 9110 section 15.4.9). It is what the plain-HTTP listener
// serves for sites in redirect mode.
type RedirectHTTPS struct {
	// Port is the HTTPS port to send clients to; 443 (or 0) is left out
	// of the URL.
	Port int
}

// NonBlocking reports true: a redirect never waits.
func (rd RedirectHTTPS) NonBlocking() bool { return true }

// Serve writes the redirect.
func (rd RedirectHTTPS) Serve(w message.ResponseWriter, r *message.Request) {
	host := hostname(r.Host)
	if host == "" || strings.ContainsAny(host, "/\\ ") {
		Respond(w, r, 400, "400 Bad Request: missing or bad Host\n")
		return
	}
	target := "https://" + rd.authority(host) + redirectPath(r.Path)
	if r.RawQuery != "" {
		target += "?" + r.RawQuery
	}
	w.Header().Set("Location", target)
	Respond(w, r, 308, "308 Permanent Redirect\n")
}

func (rd RedirectHTTPS) authority(host string) string {
	if strings.Contains(host, ":") { // IPv6 literal
		host = "[" + host + "]"
	}
	if rd.Port == 0 || rd.Port == 443 {
		return host
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), strconv.Itoa(rd.Port))
}

// redirectPath keeps an origin-form path as it is and turns anything else
// (asterisk-form) into "/".
func redirectPath(p string) string {
	if strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "//") {
		return p
	}
	return "/"
}
