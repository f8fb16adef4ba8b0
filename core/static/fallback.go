package static

import (
	"fmt"
	"strings"
	"time"

	"github.com/anx-gateway/anx/core/message"
)

// checkFallbackPath reports a Config.Fallback that cannot name a file
// under the root: it must start with "/", not end with one, and be made
// of plain names (no empty segment, none starting with ".", no backslash
// or control byte). It is a file path, not a URL: no percent-decoding.
func checkFallbackPath(p string) error {
	switch {
	case p == "":
		return nil
	case p[0] != '/':
		return fmt.Errorf("static: fallback %q: want a path starting with \"/\", such as \"/index.html\"", p)
	case strings.HasSuffix(p, "/"):
		return fmt.Errorf("static: fallback %q: want a file, not a directory", p)
	case strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }),
		!segmentsServable(p):
		return fmt.Errorf("static: fallback %q: not a plain path (no \"..\", dot files, \"//\" or control bytes)", p)
	}
	return nil
}

// checkFallbackFile fails unless the fallback names a regular file under
// the root now, opened as a request would open it (os.Root and the
// symbolic-link policy included).
func (h *Handler) checkFallbackFile() error {
	if h.fallback == "" {
		return nil
	}
	e, status := h.resolve(h.fallback, time.Now())
	if e != nil {
		e.release()
	}
	switch status {
	case 0:
		return nil
	case 301:
		return fmt.Errorf("static: fallback /%s: a directory, not a file", h.fallback)
	case 404:
		return fmt.Errorf("static: fallback /%s: no such file under %s", h.fallback, h.dir)
	}
	return fmt.Errorf("static: fallback /%s: cannot be read (%d %s)", h.fallback, status, strings.TrimSpace(statusBody(status)))
}

// serveMissing is what Serve does for a path that found nothing (404)
// before it answers 404: the directory's listing when Browse is on and
// the path ends in "/", else the fallback file when one is set and the
// request is for an HTML page. It reports whether it answered.
func (h *Handler) serveMissing(w message.ResponseWriter, r *message.Request, clean string, clk *clock) bool {
	if h.browse && strings.HasSuffix(clean, "/") && h.serveListing(w, r, clean) {
		return true
	}
	if h.fallback == "" {
		return false
	}
	if !fallbackApplies(r, clean) {
		if !hasExtension(clean) {
			w.Header().Add("Vary", "Accept") // the 404 depended on it
		}
		return false
	}
	e, status := h.find(h.fallback, clk)
	if status != 0 {
		writeStatus(w, r, status)
		return true
	}
	defer e.release()
	w.Header().Add("Vary", "Accept")
	h.serveEntry(w, r, e, clk)
	return true
}

// findsMissing is what Finds answers for a path that found nothing: true
// when Serve would list the directory or send the fallback instead of 404.
func (h *Handler) findsMissing(r *message.Request, clean string) bool {
	if h.browse && strings.HasSuffix(clean, "/") {
		if _, status := h.readListing(clean); status != 404 {
			return status == 0
		}
	}
	return h.fallback != "" && fallbackApplies(r, clean)
}

// fallbackApplies reports whether a request that found no file may get
// the fallback file: it asks for an HTML page (its Accept lists text/html
// with a weight above zero; "*/*" alone does not count) and its last path
// segment has no file extension. A missing script, style sheet, image or
// API answer is then still 404, not an HTML page with 200.
func fallbackApplies(r *message.Request, clean string) bool {
	return !hasExtension(clean) && mediaWeight(acceptValue(&r.Header), "text/html", false) > 0
}

// hasExtension reports whether the last segment of the decoded path has a
// "." in it ("/app.js", "/logo.png"), which marks a request for a file.
func hasExtension(clean string) bool {
	return strings.Contains(clean[strings.LastIndexByte(clean, '/')+1:], ".")
}
