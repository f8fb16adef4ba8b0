package proxy

import (
	"context"
	"net"
	"net/http"
)

// newH1Transport returns the transport to an http:// or unix: upstream.
func newH1Transport(t Target, o *transportOptions) transport {
	dialer := &net.Dialer{Timeout: o.connectTimeout}
	dial := dialer.DialContext
	if t.Scheme == "unix" {
		path := t.Addr
		dial = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", path)
		}
	}
	tr := &http.Transport{
		DialContext:           dial,
		MaxIdleConnsPerHost:   max(o.keepAlive, 0),
		DisableKeepAlives:     o.keepAlive < 0,
		IdleConnTimeout:       o.keepAliveTimeout,
		ResponseHeaderTimeout: o.responseHeaderTimeout,
		DisableCompression:    true,
	}
	addr := t.Addr
	if t.Scheme == "unix" {
		addr = "localhost"
	}
	return &stdTransport{scheme: "http", addr: addr, rt: tr, idle: tr.CloseIdleConnections}
}
