package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anx-gateway/anx/e2e/harness"
)

// nginxUpstreamConf is an nginx that serves a root on one loopback port,
// in the foreground as one process, logging each request's connection
// serial number and the request's number on it.
const nginxUpstreamConf = `daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 256; }
http {
	log_format conns '$connection $connection_requests $request_uri $status';
	access_log %[1]s/access.log conns;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	keepalive_timeout 75s;
	keepalive_requests 10000;
	server {
		listen 127.0.0.1:%[2]d;
		root %[3]s;
	}
}
`

// startNginx runs nginx serving root on a free loopback port and stops it
// by pid in t.Cleanup; it returns the port and nginx's directory.
func startNginx(t *testing.T, nginx, root string) (port int, dir string) {
	t.Helper()
	dir = t.TempDir()
	port = harness.FreeTCPPort(t)
	conf := filepath.Join(dir, "nginx.conf")
	harness.WriteFile(t, conf, []byte(fmt.Sprintf(nginxUpstreamConf, dir, port, root)))
	cmd := exec.Command(nginx, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting nginx: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); out.Close(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-exited:
		case <-time.After(harness.SafetyNet):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	if !waitFor(func() bool {
		select {
		case <-exited:
			return true
		default:
		}
		res, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/hello.txt")
		if err != nil {
			return false
		}
		res.Body.Close()
		return true
	}) {
		t.Fatalf("nginx did not answer on port %d within %v", port, harness.SafetyNet)
	}
	select {
	case <-exited:
		b, _ := os.ReadFile(filepath.Join(dir, "stderr"))
		e, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		t.Fatalf("nginx exited at start:\n%s\n%s", b, e)
	default:
	}
	return port, dir
}

// nginxConnections reads nginx's access log: the number of distinct
// connections and of requests whose URI starts with prefix.
func nginxConnections(t *testing.T, dir, prefix string) (conns, requests int) {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "access.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || !strings.HasPrefix(fields[2], prefix) {
			continue
		}
		seen[fields[0]] = true
		requests++
	}
	return len(seen), requests
}

// TestProxyNginxUpstream: nginx as a plain HTTP/1.1 upstream: the site's
// files come through anx byte-identical over h1, h2 and h3 (a Range
// request too), and 60 sequential requests reuse anx's pooled connections
// to nginx (nginx's access log counts fewer than 10 connections for them).
func TestProxyNginxUpstream(t *testing.T) {
	t.Parallel()
	nginx := harness.Peer(t, "nginx")
	root := t.TempDir()
	harness.WriteSite(t, root)
	port, dir := startNginx(t, nginx, root)
	s := startProxy(t, proxyConfig("", route("/", proxyTo("http://127.0.0.1:"+strconv.Itoa(port)))))
	want, err := os.ReadFile(filepath.Join(root, "data.bin"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range harness.Protos {
		c := s.Client(p)
		r := get(s, p, c, "/data.bin")
		if r.Err != nil || r.Status != http.StatusOK {
			t.Errorf("%s /data.bin: status %d err %v", p, r.Status, r.Err)
		} else {
			sameBytes(t, string(p)+" /data.bin through anx from nginx", r.Body, want)
		}
		r = get(s, p, c, "/data.bin", "Range", "bytes=1000-1999")
		if r.Status != http.StatusPartialContent || r.Header.Get("Content-Range") != "bytes 1000-1999/"+strconv.Itoa(len(want)) {
			t.Errorf("%s /data.bin bytes=1000-1999: status %d Content-Range %q, want 206 bytes 1000-1999/%d",
				p, r.Status, r.Header.Get("Content-Range"), len(want))
		} else {
			sameBytes(t, string(p)+" range through anx from nginx", r.Body, want[1000:2000])
		}
	}
	c := s.Client(harness.H1)
	for i := range 60 {
		if r := get(s, harness.H1, c, fmt.Sprintf("/dl/f%02d.bin?n=%d", i%harness.DownloadCount+1, i)); r.Status != http.StatusOK {
			t.Fatalf("request %d: status %d err %v", i, r.Status, r.Err)
		}
	}
	conns, requests := nginxConnections(t, dir, "/dl/")
	t.Logf("nginx counted %d requests for /dl/ on %d connections", requests, conns)
	if requests != 60 || conns >= 10 {
		t.Errorf("nginx counted %d requests on %d connections, want 60 on fewer than 10 (pooled connections reused)", requests, conns)
	}
}
