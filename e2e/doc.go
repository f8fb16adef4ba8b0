// Package e2e holds black-box tests of the built anx binary, driven over
// loopback with Go clients (HTTP/1.1, HTTP/2, HTTP/3), raw sockets and real
// peers (curl, curl with HTTP/3, h2load, h2spec, gtlsclient, Chromium,
// slowhttptest). Install the peers with e2e/install-peers.sh (root); run
// with `make e2e`, or `go test ./e2e/` (add -short to skip peer tests).
//
// The helpers live in e2e/harness.
package e2e
