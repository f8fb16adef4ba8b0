package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"
)

// Bounds of a server's life.
const (
	readyTimeout = 30 * time.Second // from exec to the first good responses
	stopTimeout  = 10 * time.Second // from SIGTERM to SIGKILL
	workers      = 2                // worker processes or threads of nginx and h2o
)

// role is what a server does in a load: serve the bench site's files,
// proxy every request to the upstream nginx, or proxy every request (and
// its Upgrade) to the tunnel upstream.
type role int

const (
	serveFiles role = iota
	proxyToUpstream
	tunnelToUpstream
)

func (r role) String() string {
	switch r {
	case proxyToUpstream:
		return "proxy"
	case tunnelToUpstream:
		return "tunnel"
	}
	return "files"
}

// spec says how to find, configure and start one server under test.
type spec struct {
	name string
	h3   bool // serves HTTP/3 on the https port's UDP side
	// plainOnly: the server listens for plain HTTP only (the upstream).
	plainOnly bool
	// h2c says where the server serving files takes HTTP/2 with prior
	// knowledge over plain TCP.
	h2c h2cListener
	// find returns the binary's path; anx is the -anx flag.
	find func(anx string) (string, error)
	// version returns a one-line version of the binary.
	version func(bin string) string
	// files writes a config that serves the site into in.dir and returns
	// the server's arguments; nil: the server does not serve files.
	files func(in *instance) ([]string, error)
	// proxy does the same for a config that forwards every request to
	// in.upstream; nil: the server does not proxy.
	proxy func(in *instance) ([]string, error)
	// tunnel does the same for a config that forwards every request,
	// Upgrades included, to in.upstream (the tunnel upstream); nil: the
	// server does not tunnel.
	tunnel func(in *instance) ([]string, error)
	// loads, when not empty, are the only loads the server takes.
	loads []string
}

// config returns the config writer of r, nil when sp cannot take that role.
func (sp *spec) config(r role) func(in *instance) ([]string, error) {
	switch r {
	case proxyToUpstream:
		return sp.proxy
	case tunnelToUpstream:
		return sp.tunnel
	}
	return sp.files
}

// h2cListener says where a server serving files takes h2c (HTTP/2 with
// prior knowledge over plain TCP).
type h2cListener int

const (
	noH2C         h2cListener = iota // not configured: the h2c loads are n/a
	h2cOnHTTPPort                    // on the plain HTTP port, beside HTTP/1.1 (told apart by the preface)
	// on a port of its own: nginx 1.22's `listen ... http2` without ssl
	// makes a port h2c only, so its plain HTTP/1.1 port cannot take it
	h2cOnOwnPort
)

// specs returns every server the bench knows, anx first.
func specs() []*spec {
	return []*spec{
		{name: "anx", h3: true, h2c: h2cOnHTTPPort, find: findAnx,
			version: func(bin string) string { return firstLine(bin, "version") }, files: anxConfig, proxy: anxProxyConfig, tunnel: anxProxyConfig},
		// anx again with its access log on, to a file, for the cost of logging
		// (issue 14: at most 5% of h1-plain-1k), on the loads of one request
		// per protocol.
		{name: "anx-log", h3: true, find: findAnx, loads: []string{"h1-plain-1k", "h1-tls-1k", "h2-1k", "h3-1k"},
			version: func(bin string) string { return firstLine(bin, "version") + ", access_log to a file (JSON)" }, files: anxLogConfig},
		// anx again with a rate limit on the proxied route that the loads
		// never reach, for the cost of the limiter (issue 15: at most 5% of
		// proxied throughput).
		{name: "anx-limit", find: findAnx, loads: []string{"proxy-h1", "proxy-h1-tls", "proxy-h2"},
			version: func(bin string) string { return firstLine(bin, "version") + ", rate_limit on the route, never reached" }, proxy: anxLimitProxyConfig},
		{name: "nginx", h2c: h2cOnOwnPort, find: lookPath("nginx"),
			version: func(bin string) string { return firstLine(bin, "-v") }, files: nginxConfig, proxy: nginxProxyConfig, tunnel: nginxTunnelConfig},
		{name: "h2o", h2c: h2cOnHTTPPort, find: lookPath("h2o"),
			version: func(bin string) string { return firstLine(bin, "--version") }, files: h2oConfig},
		{name: "haproxy", find: lookPath("haproxy"),
			version: func(bin string) string { return firstLine(bin, "-v") }, proxy: haproxyConfig},
		{name: "caddy", h3: true, find: lookPath("caddy"),
			version: caddyVersion, files: caddyConfig, proxy: caddyProxyConfig},
		copySpec(),
	}
}

// findAnx returns the absolute path of the -anx binary (servers run in their own dir).
func findAnx(anx string) (string, error) {
	path, err := exec.LookPath(anx)
	if err != nil {
		return "", fmt.Errorf("%w (build it first: make build)", err)
	}
	return filepath.Abs(path)
}

func lookPath(name string) func(string) (string, error) {
	return func(string) (string, error) { return exec.LookPath(name) }
}

// firstLine runs bin with args (bounded) and returns the first line it printed.
func firstLine(bin string, args ...string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(line)
}

// caddyVersion asks `caddy version`, which says "unknown" when built by go
// install, and then the module line of `caddy build-info`.
func caddyVersion(bin string) string {
	if v := firstLine(bin, "version"); v != "" && v != "unknown" {
		return v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, bin, "build-info").Output()
	for line := range strings.Lines(string(out)) {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "mod" {
			return "caddy " + f[2]
		}
	}
	return "unknown"
}

// instance is one running server process (and its process group) on loopback.
type instance struct {
	spec      *spec
	role      role
	upstream  *instance // the server proxied to (proxyToUpstream only)
	bin       string
	dir       string // private dir: config, pid file, logs, data
	files     files
	httpPort  int // plain HTTP
	httpsPort int // TLS on TCP, QUIC on UDP for h3 servers
	h2cPort   int // h2c with prior knowledge (serveFiles only; 0: none); may be httpPort

	cmd  *exec.Cmd
	log  *lockedBuffer // stdout and stderr
	done chan struct{} // closed when the process has been reaped
}

// lockedBuffer is a bytes.Buffer written by exec's copying goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// httpURL returns the plain-HTTP URL of path.
func (in *instance) httpURL(path string) string {
	return "http://127.0.0.1:" + strconv.Itoa(in.httpPort) + path
}

// h2cURL returns the http URL of path on the port that takes h2c.
func (in *instance) h2cURL(path string) string {
	return "http://127.0.0.1:" + strconv.Itoa(in.h2cPort) + path
}

// httpsURL returns the https URL of path (by address: the load tools do not verify).
func (in *instance) httpsURL(path string) string {
	return "https://127.0.0.1:" + strconv.Itoa(in.httpsPort) + path
}

// httpAddr returns 127.0.0.1:<httpPort>.
func (in *instance) httpAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(in.httpPort))
}

// httpsAddr returns 127.0.0.1:<httpsPort>.
func (in *instance) httpsAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(in.httpsPort))
}

// start writes the config of r, runs the server in its own process group
// and waits until it serves the small file over plain HTTP and over TLS
// (through the proxy for proxyToUpstream, which up must then be).
func start(ctx context.Context, sp *spec, r role, up *instance, bin, dir string, f files) (*instance, error) {
	config := sp.config(r)
	if config == nil {
		return nil, fmt.Errorf("%s: does not %s", sp.name, map[role]string{serveFiles: "serve files", proxyToUpstream: "proxy", tunnelToUpstream: "tunnel"}[r])
	}
	if r != serveFiles && up == nil {
		return nil, fmt.Errorf("%s: no upstream to proxy to", sp.name)
	}
	in := &instance{spec: sp, role: r, upstream: up, bin: bin, dir: dir, files: f, log: &lockedBuffer{}, done: make(chan struct{})}
	var err error
	if in.httpsPort, err = freePort(); err != nil {
		return nil, err
	}
	if in.httpPort, err = freePort(); err != nil {
		return nil, err
	}
	if in.h2cPort, err = h2cPort(sp, r, in.httpPort); err != nil {
		return nil, err
	}
	args, err := config(in)
	if err != nil {
		return nil, fmt.Errorf("%s: config: %w", sp.name, err)
	}
	in.cmd = exec.Command(bin, args...)
	in.cmd.Dir = dir
	in.cmd.Stdout, in.cmd.Stderr = in.log, in.log
	in.cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(dir, "xdg-data"),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "xdg-config"), "HOME="+dir)
	// Its own process group: a terminal's Ctrl-C does not reach it, and stop
	// signals the whole group (nginx's workers too).
	in.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := in.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", sp.name, err)
	}
	go func() { // owns cmd.Wait; closes done
		_ = in.cmd.Wait()
		close(in.done)
	}()
	if err := in.waitReady(ctx); err != nil {
		in.stop()
		return nil, fmt.Errorf("%s: %w; output:\n%s", sp.name, err, in.log.String())
	}
	return in, nil
}

// h2cPort returns the port where sp in role r takes h2c: its plain HTTP
// port, a free port of its own, or 0 (none).
func h2cPort(sp *spec, r role, httpPort int) (int, error) {
	if r != serveFiles {
		return 0, nil
	}
	switch sp.h2c {
	case h2cOnHTTPPort:
		return httpPort, nil
	case h2cOnOwnPort:
		return freePort()
	}
	return 0, nil
}

// waitReady polls readyURLs until each answers 200 with the small file.
func (in *instance) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	for {
		ok := true
		for _, u := range in.readyURLs() {
			res, err := c.Get(u)
			if err != nil {
				ok = false
				break
			}
			if err := readSmall(res); err != nil {
				return fmt.Errorf("GET %s: %w", u, err)
			}
		}
		if ok {
			return nil
		}
		select {
		case <-in.done:
			return fmt.Errorf("exited before ready (%v)", in.cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("not ready within %v: %w", readyTimeout, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// readyURLs returns the URLs that answer the small file once the server is up.
func (in *instance) readyURLs() []string {
	if in.spec.plainOnly {
		return []string{in.httpURL("/" + smallFile)}
	}
	return []string{in.httpURL("/" + smallFile), in.httpsURL("/" + smallFile)}
}

// stop sends SIGTERM to the process group, then SIGKILL after stopTimeout,
// and waits for the leader to be reaped. Calling it twice is harmless.
func (in *instance) stop() {
	pgid := in.cmd.Process.Pid
	select {
	case <-in.done:
	default:
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-in.done:
		case <-time.After(stopTimeout):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-in.done
		}
	}
	// Workers left behind by a dead leader: the group is ours alone.
	if len(groupPIDs(pgid)) > 0 {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
}

// rss returns the sum of VmRSS over the server's process group, in bytes.
func (in *instance) rss() (int64, error) {
	var sum int64
	pids := groupPIDs(in.cmd.Process.Pid)
	if len(pids) == 0 {
		return 0, errors.New("no process left in the group")
	}
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue // exited meanwhile
		}
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				if err != nil {
					return 0, fmt.Errorf("VmRSS of %d: %w", pid, err)
				}
				sum += kb << 10
			}
		}
	}
	return sum, nil
}

// groupPIDs lists the live processes whose process group is pgid.
func groupPIDs(pgid int) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...: comm may hold spaces, so cut at the last ')'.
		i := bytes.LastIndexByte(b, ')')
		fields := strings.Fields(string(b[i+1:]))
		if len(fields) > 2 && fields[0] != "Z" && fields[2] == strconv.Itoa(pgid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// freePort returns a port of 127.0.0.1 free on TCP and UDP at the time of the call.
func freePort() (int, error) {
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		ln.Close()
		if err != nil {
			continue
		}
		pc.Close()
		return port, nil
	}
	return 0, errors.New("bench: no port free on both TCP and UDP")
}

// writeConfig renders tmpl with in into dir/name and returns its path.
func writeConfig(in *instance, name, tmpl string) (string, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, in); err != nil {
		return "", err
	}
	path := filepath.Join(in.dir, name)
	return path, os.WriteFile(path, b.Bytes(), 0o644)
}

// Workers is the worker count given to nginx and h2o (for templates).
func (in *instance) Workers() int { return workers }

// Dir is the server's private dir (for templates, like the methods below).
func (in *instance) Dir() string { return in.dir }

// Site is the site root.
func (in *instance) Site() string { return in.files.site }

// Cert is the shared certificate chain.
func (in *instance) Cert() string { return in.files.cert }

// Key is the shared certificate's key.
func (in *instance) Key() string { return in.files.key }

// HTTP is the plain-HTTP port.
func (in *instance) HTTP() int { return in.httpPort }

// H2C is the port that takes h2c (files role).
func (in *instance) H2C() int { return in.h2cPort }

// HTTPS is the TLS (and QUIC) port.
func (in *instance) HTTPS() int { return in.httpsPort }

// Upstream is the host:port of the server proxied to.
func (in *instance) Upstream() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(in.upstream.httpPort))
}

// anx: as built (GOMAXPROCS default), its own local CA's leaf, plain HTTP
// serving, idle timeout raised to nginx's so the idle-connection load keeps
// its connections, the access log off as nginx's is here (anx-log has it
// on).
const anxTOML = `https = "127.0.0.1:{{.HTTPS}}"
http  = "127.0.0.1:{{.HTTP}}"
data  = "{{.Dir}}/data"

[timeouts]
idle = "120s"

[[site]]
hosts = ["localhost"]
root  = "{{.Site}}"
http_mode = "serve"
`

func anxConfig(in *instance) ([]string, error) {
	path, err := writeConfig(in, "anx.toml", anxTOML+`access_log = "off"`+"\n")
	return []string{"run", "--config", path}, err
}

// anxLogConfig is anxConfig with the access log on, to a file in the
// server's dir, in the default format (JSON).
func anxLogConfig(in *instance) ([]string, error) {
	path, err := writeConfig(in, "anx.toml", anxTOML+`access_log = "{{.Dir}}/access.log"`+"\n")
	return []string{"run", "--config", path}, err
}

// nginxConfTemplate returns an nginx config template: processes worker
// processes and what every bench nginx shares (open-files limit, pid and
// error log in its dir, the foreground, access_log off, temp paths in its
// dir), with settings (directives of the http block) before the temp paths
// and blocks (the server block and what it refers to) after them.
func nginxConfTemplate(processes, settings, blocks string) string {
	return "worker_processes " + processes + `;
worker_rlimit_nofile 20000;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/nginx-error.log warn;
daemon off;
events { worker_connections 10000; }
http {
	access_log off;
` + settings + `	client_body_temp_path {{.Dir}}/nginx-body;
	proxy_temp_path {{.Dir}}/nginx-proxy;
	fastcgi_temp_path {{.Dir}}/nginx-fastcgi;
	uwsgi_temp_path {{.Dir}}/nginx-uwsgi;
	scgi_temp_path {{.Dir}}/nginx-scgi;
` + blocks + "}\n"
}

// nginxFileSettings serve files from the page cache over long keep-alive.
const nginxFileSettings = `	sendfile on;
	tcp_nopush on;
	open_file_cache max=1000 inactive=60s;
	open_file_cache_valid 60s;
	keepalive_requests 10000000;
	keepalive_timeout 120s;
	types { text/html html; }
	default_type application/octet-stream;
`

// nginxListenPlainAndTLS are the listen and TLS directives of a server
// block under test: plain HTTP and TLS (h2 and HTTP/1.1) on loopback.
const nginxListenPlainAndTLS = `		listen 127.0.0.1:{{.HTTP}};
		listen 127.0.0.1:{{.HTTPS}} ssl http2;
		server_name localhost;
		ssl_certificate {{.Cert}};
		ssl_certificate_key {{.Key}};
		ssl_protocols TLSv1.2 TLSv1.3;
`

// writeNginxConfig renders tmpl into dir/nginx.conf and returns nginx's
// arguments to run with it, its prefix and error log in dir.
func writeNginxConfig(in *instance, tmpl string) ([]string, error) {
	path, err := writeConfig(in, "nginx.conf", tmpl)
	return []string{"-p", in.dir, "-c", path, "-e", filepath.Join(in.dir, "nginx-error.log")}, err
}

// nginxH2CServer is the h2c server block of the file server: nginx 1.22
// takes h2c with prior knowledge only on a port whose listen says http2
// without ssl, and that port then takes nothing else. sendfile is off
// there: with it, each h2c response of nginx 1.22 waited ~40 ms (Nagle
// against delayed ACKs; h2load -c8 -m1: 184 req/s, 43 ms a request; off:
// 15.5k req/s, 0.4 ms), and h2 over TLS never uses sendfile anyway.
const nginxH2CServer = `	server {
		listen 127.0.0.1:{{.H2C}} http2;
		server_name localhost;
		sendfile off;
		root {{.Site}};
	}
`

func nginxConfig(in *instance) ([]string, error) {
	return writeNginxConfig(in, nginxConfTemplate("{{.Workers}}", nginxFileSettings, `	server {
`+nginxListenPlainAndTLS+`		root {{.Site}};
	}
`+nginxH2CServer))
}

// h2o runs as nobody when started by root, and would write no pid file
// then: the bench knows its pid anyway. OCSP stapling is off (no responder).
const h2oConf = `num-threads: {{.Workers}}
max-connections: 20000
error-log: {{.Dir}}/h2o-error.log
http1-request-timeout: 120
http2-idle-timeout: 120
listen:
  host: 127.0.0.1
  port: {{.HTTP}}
listen:
  host: 127.0.0.1
  port: {{.HTTPS}}
  ssl:
    certificate-file: {{.Cert}}
    key-file: {{.Key}}
    minimum-version: TLSv1.2
    ocsp-update-interval: 0
hosts:
  "localhost":
    paths:
      "/":
        file.dir: {{.Site}}
`

func h2oConfig(in *instance) ([]string, error) {
	path, err := writeConfig(in, "h2o.conf", h2oConf)
	return []string{"-c", path}, err
}

// caddyfileTemplate returns a Caddyfile template: no admin endpoint,
// redirects or trust store, storage in its dir, the servers' protocols,
// and handler (the site's directives) on both the TLS and the plain site.
func caddyfileTemplate(protocols, handler string) string {
	return `{
	admin off
	auto_https disable_redirects
	skip_install_trust
	storage file_system {{.Dir}}/caddy-data
	servers {
		protocols ` + protocols + `
	}
}
https://localhost:{{.HTTPS}}, https://127.0.0.1:{{.HTTPS}} {
	bind 127.0.0.1
	tls {{.Cert}} {{.Key}}
` + handler + `}
http://:{{.HTTP}} {
	bind 127.0.0.1
` + handler + "}\n"
}

// writeCaddyfile renders tmpl into dir/Caddyfile and returns caddy's
// arguments to run with it.
func writeCaddyfile(in *instance, tmpl string) ([]string, error) {
	path, err := writeConfig(in, "Caddyfile", tmpl)
	return []string{"run", "--adapter", "caddyfile", "--config", path}, err
}

func caddyConfig(in *instance) ([]string, error) {
	return writeCaddyfile(in, caddyfileTemplate("h1 h2 h3", "\troot * {{.Site}}\n\tfile_server\n"))
}
