// Package proxy is anx's reverse proxy: the engine's second handler beside
// core/static. A Handler forwards each request it serves to one of a
// route's upstreams, picked by a load-balancing policy among those that
// health checks have not taken out, retries what can be retried, and
// streams both bodies with backpressure. It is protocol-neutral on the
// client side: h1, h2 and h3 reach it through core/route.
//
// # Transports
//
// Each upstream has a transport, shared through Transports by every route
// (and every reloaded route) that names it with the same connection
// options, so that pooled connections survive a reload:
//
//   - http:// and unix: go through h1Client, anx's own HTTP/1.1 client: a
//     LIFO pool per upstream checked without blocking before each reuse
//     (an upstream that closed an idle connection is found before a
//     request is written to it), a strict response parser that does no
//     I/O, one framing per request, 0 allocations per pooled round trip.
//   - https:// goes through net/http's Transport, which offers h2 and
//     http/1.1 by ALPN and verifies the certificate (system roots, or
//     TLS.RootCAs).
//   - h2c:// goes through x/net/http2's Transport with prior knowledge.
//
// gRPC's trailers and 1xx responses pass through all of them.
//
// # On the event loop
//
// A request without content and without Upgrade, to a route whose
// upstreams are all http:// at an IP address or unix: (ServesOnLoop), is
// proxied on the event loop that read it when the front end's writer is
// a message.LoopWriter (h1's on its loops): Serve writes the request head
// to a connection of that loop's own pool to the upstream (loop_pool.go:
// connections dialed with netpoll.Loop.Dial, closed by their own timers,
// peeked at before reuse once idle 100 ms; a request that a reused one
// loses all the same goes once more over a new one when it may be
// repeated), defers the response and returns;
// the upstream connection's events parse the response head and relay the
// body as it arrives, pausing the upstream while the client's output is
// backed up (loop.go). No goroutine, no lock and no allocation per
// request. Balancing, health, retries, the header rules and the timeouts
// are the blocking path's; a host name in an upstream URL (which the loop
// does not resolve), https:// and h2c:// upstreams, requests with
// content, upgrades, and h2 and h3 clients take the blocking path.
//
// # Retries
//
// A request that was not sent at all (refused, connect timeout, a pooled
// connection found dead) is retried on another upstream whatever its
// method. Once request bytes went out, only an idempotent request (RFC
// 9110 section 9.2.2) or one carrying Idempotency-Key is retried, and only
// when its body was small enough to keep (RetryBodyBytes). Nothing is
// retried once the response head has been passed to the client. MaxTries
// and TryDuration bound the attempts.
//
// # Health
//
// Health belongs to the route: two routes naming one upstream share its
// connections, not its state. Active checks (Config.Health) and passive
// failures (Config.Passive) take an upstream out; one coming back gets a
// share of requests that grows from a tenth over SlowStart. When every
// upstream is out the answer is 503 if health checks took them all out,
// else 502, at once.
//
// # Protection and degradation
//
// Config.Protect (protect.go) adds, per route: a bound on the requests in
// flight to each upstream (MaxConns) with a bounded FIFO queue of
// requests waiting for a slot and a QueueTimeout, after which, or when
// the queue is full, the answer is 503 with Retry-After (queue.go); a
// circuit breaker per upstream (breaker.go), closed, open after
// consecutive failures or an error rate in a window, half-open with a
// few probes, whose state the route's Transports keep across reloads; and
// a degraded answer when no upstream gives one (degrade.go): the last
// good response to the GET URL, kept for StaleIfError in bounded memory,
// or a fallback file. Failures count for the breaker where they count for
// passive health (noteFailure, notePassiveStatus), which a breaker
// replaces unless MaxFails is set. On the loop nothing waits:
// ServesOnLoop sends a request that would wait in the queue to a
// goroutine, and one that finds no slot once on the loop gets the 503 at
// once. An open breaker's upstream is skipped by the balancer like one
// that health checks took out.
//
// # Goroutines
//
// Off the loop, Serve runs on the front end's goroutine for the request
// (a detached h1 connection's, or net/http's for h2 and h3); a WebSocket
// tunnel uses that goroutine and one more, until both directions end.
// Each route with active checks has one checker goroutine, stopped by
// Close; each h1Client has at most one sweeper timer. An HTTP/1.1 request
// whose body does not fit the first write sends the rest from a goroutine
// of its own while Serve reads the response (an upstream may answer 413
// before it has read the body); it always ends before roundTrip returns.
// On the loop there is none: the loop's goroutine owns the exchange and
// both connections. A request waiting in the queue waits on its own
// goroutine, woken by the request that frees a slot or by its timer.
package proxy
