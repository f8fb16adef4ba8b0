package static

import "github.com/anx-gateway/anx/core/message"

// Finds reports whether Serve would answer r with something of the root's
// own: a GET or HEAD whose path names a regular file (or, for a path
// ending in "/", a directory with an index file, or with Browse any
// directory), a directory that Serve redirects to its "/" form, or a
// request Serve answers with the Fallback file. A path that Serve would
// answer 400, 404 or 405 to, or a file it may not read, is not found;
// neither is anything once the handler is closed. It never waits (it
// opens and stats as Serve does, through the file cache) and does not
// change r, so that route.TryFirst can send the requests it does not find
// elsewhere: "a file if it exists, else the application".
func (h *Handler) Finds(r *message.Request) bool {
	if r.Method != "GET" && r.Method != "HEAD" {
		return false
	}
	clean, status := decodePath(r.Path)
	if status != 0 {
		return false
	}
	var clk clock
	e, status := h.find(clean[1:], &clk)
	if e != nil {
		e.release()
	}
	return status == 0 || status == 301 || status == 404 && h.findsMissing(r, clean)
}
