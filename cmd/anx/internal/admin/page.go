package admin

import (
	_ "embed"
	"net/http"
)

// page is the status page: one HTML file with its script and style,
// which reads /status.json every second.
//
//go:embed page.html
var page []byte

// servePage answers / with the status page.
func servePage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
	_, _ = w.Write(page)
}
