package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// The proxy loads send the same requests as the file loads to a server
// that forwards each one over plain HTTP/1.1 keep-alive to one upstream:
// an nginx with one worker serving the bench site, started once per bench
// run and never the server under test.

// upstreamSpec is the upstream nginx: plain HTTP/1.1 only, one worker.
func upstreamSpec() *spec {
	return &spec{name: "upstream", plainOnly: true, find: lookPath("nginx"),
		version: func(bin string) string { return firstLine(bin, "-v") }, files: upstreamConfig}
}

// startUpstream starts the upstream nginx in dir, or says why it cannot.
func startUpstream(ctx context.Context, dir string, f files) (*instance, error) {
	return startPeer(ctx, "upstream nginx", upstreamSpec(), dir, f)
}

// startPeer starts sp, a plain-HTTP server the loads proxy to (never a
// server under test), in dir; what names it in the error of a missing
// binary.
func startPeer(ctx context.Context, what string, sp *spec, dir string, f files) (*instance, error) {
	bin, err := sp.find("")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return start(ctx, sp, serveFiles, nil, bin, dir, f)
}

// upstreamConfig serves the site with one worker and long keep-alive, so
// that the proxies' pooled connections are not closed under them.
func upstreamConfig(in *instance) ([]string, error) {
	return writeNginxConfig(in, nginxConfTemplate("1", nginxFileSettings, `	server {
		listen 127.0.0.1:{{.HTTP}};
		server_name localhost;
		root {{.Site}};
	}
`))
}

// anxProxyConfig is the quick start of issue 12 (anx run --proxy URL) as a
// config file, so that the access log can be off as nginx's is here: no
// root (nothing served from a directory), every request of the site
// forwarded to the upstream; plain HTTP serves (proxies) instead of
// redirecting.
func anxProxyConfig(in *instance) ([]string, error) {
	return writeAnxProxyConfig(in, "")
}

// anxLimitProxyConfig is anxProxyConfig with a rate limit on the route
// that the loads never reach (a million requests a second per client
// address, nodelay): what the limiter costs a proxied request (issue 15:
// at most 5%).
func anxLimitProxyConfig(in *instance) ([]string, error) {
	return writeAnxProxyConfig(in, `rate_limit = { rate = "1000000/s", burst = 1000000, nodelay = true }`+"\n")
}

// writeAnxProxyConfig writes anxProxyConfig with route's extra lines in
// its route.
func writeAnxProxyConfig(in *instance, route string) ([]string, error) {
	path, err := writeConfig(in, "anx.toml", `https = "127.0.0.1:{{.HTTPS}}"
http  = "127.0.0.1:{{.HTTP}}"
data  = "{{.Dir}}/data"

[[site]]
hosts = ["localhost"]
http_mode = "serve"
access_log = "off"

[[site.route]]
path = "/"
proxy = ["http://{{.Upstream}}"]
`+route)
	return []string{"run", "--config", path}, err
}

// nginxProxyConfig is nginx proxy_pass as its docs tune it for keep-alive
// to the upstream: an upstream block with keepalive, HTTP/1.1 and no
// Connection field. The upstream side's keepalive_requests and timeout are
// raised like the client side's, so no proxy reconnects during a load.
func nginxProxyConfig(in *instance) ([]string, error) {
	return writeNginxConfig(in, nginxConfTemplate("{{.Workers}}", `	keepalive_requests 10000000;
	keepalive_timeout 120s;
`, `	upstream app {
		server {{.Upstream}};
		keepalive 32;
		keepalive_requests 10000000;
		keepalive_timeout 120s;
	}
	server {
`+nginxListenPlainAndTLS+`		location / {
			proxy_pass http://app;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
		}
	}
`))
}

// haproxyConf: two threads, no logging (as nginx's access_log off), one
// plain and one TLS frontend (h2 and http/1.1 by ALPN), idle upstream
// connections shared by every client connection (http-reuse always).
const haproxyConf = `global
	nbthread {{.Workers}}
	maxconn 4096
	ssl-default-bind-options ssl-min-ver TLSv1.2

defaults
	mode http
	option http-keep-alive
	http-reuse always
	timeout connect 5s
	timeout client 120s
	timeout server 120s
	timeout http-keep-alive 120s

frontend plain
	bind 127.0.0.1:{{.HTTP}}
	default_backend app

frontend tls
	bind 127.0.0.1:{{.HTTPS}} ssl crt {{.Dir}}/haproxy.pem alpn h2,http/1.1
	default_backend app

backend app
	server up {{.Upstream}}
`

// haproxyConfig writes the config and the PEM HAProxy wants: the chain and
// the key in one file.
func haproxyConfig(in *instance) ([]string, error) {
	var pem []byte
	for _, name := range []string{in.files.cert, in.files.key} {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		pem = append(pem, b...)
	}
	if err := os.WriteFile(filepath.Join(in.dir, "haproxy.pem"), pem, 0o600); err != nil {
		return nil, err
	}
	path, err := writeConfig(in, "haproxy.cfg", haproxyConf)
	return []string{"-f", path, "-db"}, err
}

func caddyProxyConfig(in *instance) ([]string, error) {
	return writeCaddyfile(in, caddyfileTemplate("h1 h2", "\treverse_proxy {{.Upstream}}\n"))
}

// proxyLatencyLoad measures the open-loop latency of plain HTTP/1.1
// keep-alive GETs of the small file, rate per second straight to the
// upstream and, at the same time, rate per second through the proxy: what
// the proxy adds is the difference, and a stall of the shared machine
// lands on both streams rather than on one of them.
func proxyLatencyLoad(rate int) func(context.Context, *instance, time.Duration) (map[string]float64, error) {
	return func(ctx context.Context, in *instance, d time.Duration) (map[string]float64, error) {
		ls, err := openLoop(ctx, rate, d, in.upstream.httpURL("/"+smallFile), in.httpURL("/"+smallFile))
		if err != nil {
			return nil, err
		}
		direct, through := ls[0], ls[1]
		return map[string]float64{
			"p99_ms": through.p99, "direct_p99_ms": direct.p99, "added_p99_ms": through.p99 - direct.p99,
			"p50_ms": through.p50, "direct_p50_ms": direct.p50,
			"errors": float64(through.failed + direct.failed),
		}, nil
	}
}
