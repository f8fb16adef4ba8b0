// Package harness starts the built anx binary on loopback and talks to it over
// HTTP/1.1, HTTP/2 and HTTP/3 with Go clients, raw sockets and real peers.
//
// Every helper is bound to a testing.TB: processes are stopped by pid in
// t.Cleanup, ports are picked free at run time, and every wait ends with
// its event, bounded by SafetyNet. A Server's cleanup fails its test if anx
// exited early or non-zero after SIGTERM, or its log shows a data race, a
// panic or a level=ERROR line the test did not declare (LogProblems,
// Options.ExpectedErrors).
//
// Environment:
//
//	ANX_BIN      prebuilt anx binary (else Main builds ./cmd/anx once)
//	ANX_CURL_H3  curl built with HTTP/3 (else the cache dir of e2e/install-peers.sh)
//	ANX_H2SPEC   h2spec binary (else PATH, else <repo>/.tools/bin)
//
// Other peers (curl, h2load, gtlsclient, chromium, slowhttptest, testssl,
// openssl, qemu-aarch64) are looked up in PATH; Pebble and
// pebble-challtestsrv (StartPebble) in PATH, then in <repo>/.tools/bin. A
// missing peer fails the test and says how to install it, except under `go
// test -short`, where tests that need a peer are skipped.
package harness
