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
	sp := upstreamSpec()
	bin, err := sp.find("")
	if err != nil {
		return nil, fmt.Errorf("upstream nginx: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return start(ctx, sp, serveFiles, nil, bin, dir, f)
}

// upstreamConf serves the site with one worker and long keep-alive, so
// that the proxies' pooled connections are not closed under them.
const upstreamConf = `worker_processes 1;
worker_rlimit_nofile 20000;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/nginx-error.log warn;
daemon off;
events { worker_connections 10000; }
http {
	access_log off;
	sendfile on;
	tcp_nopush on;
	open_file_cache max=1000 inactive=60s;
	open_file_cache_valid 60s;
	keepalive_requests 10000000;
	keepalive_timeout 120s;
	types { text/html html; }
	default_type application/octet-stream;
	client_body_temp_path {{.Dir}}/nginx-body;
	proxy_temp_path {{.Dir}}/nginx-proxy;
	fastcgi_temp_path {{.Dir}}/nginx-fastcgi;
	uwsgi_temp_path {{.Dir}}/nginx-uwsgi;
	scgi_temp_path {{.Dir}}/nginx-scgi;
	server {
		listen 127.0.0.1:{{.HTTP}};
		server_name localhost;
		root {{.Site}};
	}
}
`

func upstreamConfig(in *instance) ([]string, error) {
	path, err := writeConfig(in, "nginx.conf", upstreamConf)
	return []string{"-p", in.dir, "-c", path, "-e", filepath.Join(in.dir, "nginx-error.log")}, err
}

// anxProxyConfig is the quick start of issue 12: no root (nothing served from
// a directory), every request of the site forwarded to --proxy; plain HTTP
// serves (proxies) instead of redirecting.
func anxProxyConfig(in *instance) ([]string, error) {
	return []string{"run",
		"--https", in.httpsAddr(),
		"--http", fmt.Sprintf("127.0.0.1:%d", in.httpPort),
		"--data", filepath.Join(in.dir, "data"),
		"--domain", "localhost",
		"--http-mode", "serve",
		"--proxy", "http://" + in.Upstream(),
	}, nil
}

// nginxProxyConf is nginx proxy_pass as its docs tune it for keep-alive to
// the upstream: an upstream block with keepalive, HTTP/1.1 and no
// Connection field. The upstream side's keepalive_requests and timeout are
// raised like the client side's, so no proxy reconnects during a load.
const nginxProxyConf = `worker_processes {{.Workers}};
worker_rlimit_nofile 20000;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/nginx-error.log warn;
daemon off;
events { worker_connections 10000; }
http {
	access_log off;
	keepalive_requests 10000000;
	keepalive_timeout 120s;
	client_body_temp_path {{.Dir}}/nginx-body;
	proxy_temp_path {{.Dir}}/nginx-proxy;
	fastcgi_temp_path {{.Dir}}/nginx-fastcgi;
	uwsgi_temp_path {{.Dir}}/nginx-uwsgi;
	scgi_temp_path {{.Dir}}/nginx-scgi;
	upstream app {
		server {{.Upstream}};
		keepalive 32;
		keepalive_requests 10000000;
		keepalive_timeout 120s;
	}
	server {
		listen 127.0.0.1:{{.HTTP}};
		listen 127.0.0.1:{{.HTTPS}} ssl http2;
		server_name localhost;
		ssl_certificate {{.Cert}};
		ssl_certificate_key {{.Key}};
		ssl_protocols TLSv1.2 TLSv1.3;
		location / {
			proxy_pass http://app;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
		}
	}
}
`

func nginxProxyConfig(in *instance) ([]string, error) {
	path, err := writeConfig(in, "nginx.conf", nginxProxyConf)
	return []string{"-p", in.dir, "-c", path, "-e", filepath.Join(in.dir, "nginx-error.log")}, err
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

const caddyProxyfile = `{
	admin off
	auto_https disable_redirects
	skip_install_trust
	storage file_system {{.Dir}}/caddy-data
	servers {
		protocols h1 h2
	}
}
https://localhost:{{.HTTPS}}, https://127.0.0.1:{{.HTTPS}} {
	bind 127.0.0.1
	tls {{.Cert}} {{.Key}}
	reverse_proxy {{.Upstream}}
}
http://:{{.HTTP}} {
	bind 127.0.0.1
	reverse_proxy {{.Upstream}}
}
`

func caddyProxyConfig(in *instance) ([]string, error) {
	path, err := writeConfig(in, "Caddyfile", caddyProxyfile)
	return []string{"run", "--adapter", "caddyfile", "--config", path}, err
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
