// Package proxy is anx's reverse proxy: the engine's second handler beside
// core/static. A Handler forwards each request it serves to one of a
// route's upstreams (HTTP/1.1 over TCP or a Unix socket, HTTPS with h2 or
// HTTP/1.1 by ALPN, or h2c), picked by a load-balancing policy among those
// that health checks have not taken out, retries what can be retried, and
// streams both bodies with backpressure. It is protocol-neutral on the
// client side: h1, h2 and h3 reach it through core/route.
package proxy
