package e2e

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/anx-gateway/anx/e2e/harness"
)

// statusScreenshot, when set, is where TestStatusPageMovesUnderLoad saves
// a screenshot of the status page under load (docs/status-page.png).
var statusScreenshot = flag.String("status-screenshot", "", "save a screenshot of the status page under load to this PNG file")

// startWithAdmin runs anx serving the fixture site on localhost, with
// the admin listener on a free loopback port, and returns its address.
func startWithAdmin(t *testing.T) (*harness.Server, string) {
	t.Helper()
	adminAddr := "127.0.0.1:" + strconv.Itoa(harness.FreeTCPPort(t))
	cfg := "admin = \"" + adminAddr + "\"\n" + harness.Config{}.TOML()
	return harness.Start(t, harness.Options{Config: cfg}), adminAddr
}

// loadUntilStopped runs h2load against url, in runs of a few seconds,
// until the returned function is called (which waits for the last run to
// end, so that no h2load outlives the test).
func loadUntilStopped(t *testing.T, dir, url string, args ...string) (stop func()) {
	t.Helper()
	h2load := harness.Peer(t, "h2load")
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // exits after the run during which done closes
		for {
			select {
			case <-done:
				return
			default:
			}
			r := harness.RunCmd(t, dir, harness.PeerTimeout, h2load, append(args, "-D", "3", url)...)
			if r.ExitCode != 0 {
				t.Errorf("h2load exited %d: %s", r.ExitCode, tail(r.Stderr+r.Stdout, 2000))
				return
			}
		}
	})
	var once sync.Once
	stop = func() {
		once.Do(func() {
			close(done)
			wg.Wait()
		})
	}
	t.Cleanup(stop)
	return stop
}

// scrape returns anx's /metrics.
func scrape(t *testing.T, adminAddr string) []byte {
	t.Helper()
	resp, err := http.Get("http://" + adminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d, %v", resp.StatusCode, err)
	}
	return b
}

// TestMetricsScrapedByPrometheus: a real Prometheus scrapes anx's
// /metrics every second while h2load runs; its query API then gives a
// non-zero request rate for the site over HTTP/2, and the localhost
// certificate's expiry; promtool finds no problem in a scrape.
func TestMetricsScrapedByPrometheus(t *testing.T) {
	t.Parallel()
	promtool := harness.Peer(t, "promtool")
	s, adminAddr := startWithAdmin(t)
	prom := harness.StartPrometheus(t, adminAddr)
	stop := loadUntilStopped(t, s.Dir, s.URL("/hello.txt"), "-c", "4", "-m", "4")

	rate := prom.WaitQuery(t, `sum by (site, proto) (rate(anx_http_requests_total{site="localhost",code_class="2xx"}[5s]))`,
		func(x harness.Sample) bool { return x.Labels["proto"] == "h2" && x.Value > 0 })
	t.Logf("Prometheus: %.0f requests/s over HTTP/2 for localhost", rate.Value)
	stop()

	expiry := prom.WaitQuery(t, `anx_certificate_expiry_seconds{name="localhost"}`, func(x harness.Sample) bool { return true })
	if days := expiry.Value / 86400; days <= 0 || days > 400 {
		t.Errorf("the localhost certificate expires in %.1f days, want within (0, 400]", days)
	}

	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(scrape(t, adminAddr))
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// statusNumber matches a number the status page shows, by element id.
func statusNumber(t *testing.T, dom, id string) int {
	t.Helper()
	m := regexp.MustCompile(`id="` + id + `">([0-9,]+)<`).FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("the status page has no number with id %q:\n%s", id, tail(dom, 3000))
	}
	n, err := strconv.Atoi(strings.ReplaceAll(m[1], ",", ""))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestStatusPageMovesUnderLoad: headless Chromium loads the status page
// twice while h2load runs; the page has rendered what /status.json said
// (the HTTP/2 total and the requests per second are numbers, the
// localhost certificate is listed), and the HTTP/2 total grew between
// the two loads.
func TestStatusPageMovesUnderLoad(t *testing.T) {
	t.Parallel()
	chromium := harness.Peer(t, "chromium")
	s, adminAddr := startWithAdmin(t)
	loadUntilStopped(t, s.Dir, s.URL("/hello.txt"), "-c", "2", "-m", "2")
	page := "http://" + adminAddr + "/"
	args := []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + t.TempDir(),
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
		"--disable-dev-shm-usage", "--window-size=1000,1300"}
	dump := func() string {
		r := harness.RunCmd(t, t.TempDir(), harness.PeerTimeout, chromium, append(args, "--virtual-time-budget=3000", "--dump-dom", page)...)
		if !strings.Contains(r.Stdout, "anx status") {
			t.Fatalf("chromium --dump-dom (exit %d): no status page\n%s\n%s", r.ExitCode, tail(r.Stdout, 2000), tail(r.Stderr, 2000))
		}
		return r.Stdout
	}
	// Wait until anx has served some requests, so that the first load
	// has a number to compare with.
	waitStatus(t, adminAddr, func(st statusJSON) bool { return st.RequestsByProto["h2"] > 0 })
	first := dump()
	before := statusNumber(t, first, "total-h2")
	waitStatus(t, adminAddr, func(st statusJSON) bool { return st.RequestsByProto["h2"] > uint64(before) })
	second := dump()
	after := statusNumber(t, second, "total-h2")
	if before == 0 || after <= before {
		t.Errorf("the page's HTTP/2 total went from %d to %d under load, want it to grow from more than 0", before, after)
	}
	statusNumber(t, second, "rps")
	if !strings.Contains(second, "<td>localhost</td><td>anx-internal</td>") {
		t.Errorf("the page does not list the localhost certificate:\n%s", tail(second, 3000))
	}
	if *statusScreenshot != "" {
		r := harness.RunCmd(t, t.TempDir(), harness.PeerTimeout, chromium, append(args, "--virtual-time-budget=5000", "--screenshot="+*statusScreenshot, page)...)
		if b, err := os.ReadFile(*statusScreenshot); err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Errorf("no screenshot at %s (exit %d): %v\n%s", *statusScreenshot, r.ExitCode, err, tail(r.Stderr, 2000))
		}
	}
}

// statusJSON is the part of /status.json the tests read.
type statusJSON struct {
	RequestsByProto map[string]uint64 `json:"requests_by_proto"`
}

// waitStatus polls /status.json until ok; the deadline is a safety net.
func waitStatus(t *testing.T, adminAddr string, ok func(statusJSON) bool) {
	t.Helper()
	var last statusJSON
	held := waitFor(func() bool {
		resp, err := http.Get("http://" + adminAddr + "/status.json")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		last = statusJSON{}
		return json.NewDecoder(resp.Body).Decode(&last) == nil && ok(last)
	})
	if !held {
		t.Fatalf("/status.json never showed what the test waits for: last %+v", last)
	}
}

// TestAdminRefusesRemoteAddress: an admin address that is not loopback
// makes `anx validate` and `anx run` exit non-zero with one line naming
// the file, the line and the key; admin_allow_remote = true accepts it.
func TestAdminRefusesRemoteAddress(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	harness.WriteFile(t, dir+"/site/index.html", []byte("hi"))
	head := "https = \"127.0.0.1:" + strconv.Itoa(harness.FreePort(t)) + "\"\nhttp = \"127.0.0.1:" +
		strconv.Itoa(harness.FreeTCPPort(t)) + "\"\ndata = \"data\"\n"
	site := "\n[[site]]\nhosts = [\"localhost\"]\nroot = \"site\"\n"
	path := dir + "/remote.toml"
	harness.WriteFile(t, path, []byte(head+"admin = \"0.0.0.0:"+strconv.Itoa(harness.FreeTCPPort(t))+"\"\n"+site))
	for _, cmd := range []string{"validate", "run"} {
		r := harness.RunAnx(t, dir, harness.SafetyNet, cmd, "--config", path)
		ls := lines(r.Stderr)
		if r.ExitCode == 0 || len(ls) != 1 || !strings.Contains(ls[0], `remote.toml:4: key "admin"`) ||
			!strings.Contains(ls[0], "not a loopback address") {
			t.Errorf("anx %s: exit %d, stderr %q; want non-zero and one line naming remote.toml:4 and key \"admin\"", cmd, r.ExitCode, r.Stderr)
		}
	}
	allowed := dir + "/allowed.toml"
	harness.WriteFile(t, allowed, []byte(head+"admin = \"0.0.0.0:2019\"\nadmin_allow_remote = true\n"+site))
	if r := harness.RunAnx(t, dir, harness.SafetyNet, "validate", "--config", allowed); r.ExitCode != 0 {
		t.Errorf("anx validate with admin_allow_remote = true: exit %d, stderr %q", r.ExitCode, r.Stderr)
	}
}

// TestMetricsKeepTotalsAcrossReload: requests over h1, h2 and h3 are
// counted by protocol; a reload that keeps the site's files and adds a
// route keeps their totals, and the new route is counted from then on.
func TestMetricsKeepTotalsAcrossReload(t *testing.T) {
	t.Parallel()
	s, adminAddr := startWithAdmin(t)
	get := func(p harness.Proto, path string) {
		if r := s.Get(p, path); r.Err != nil || r.Status != 200 {
			t.Fatalf("%s GET %s: %d, %v", p, path, r.Status, r.Err)
		}
	}
	for _, p := range harness.Protos {
		get(p, "/hello.txt")
		get(p, "/hello.txt")
	}
	series := func(proto, route string, n int) string {
		return `anx_http_requests_total{code_class="2xx",proto="` + proto + `",route="` + route + `",site="localhost"} ` + strconv.Itoa(n) + "\n"
	}
	waitMetrics := func(want ...string) {
		t.Helper()
		var last string
		held := waitFor(func() bool { // the count follows the response's end by a moment
			last = string(scrape(t, adminAddr))
			for _, w := range want {
				if !strings.Contains(last, w) {
					return false
				}
			}
			return true
		})
		if !held {
			t.Fatalf("/metrics never had %q:\n%s", want, last)
		}
	}
	waitMetrics(series("h1", "(root)", 2), series("h2", "(root)", 2), series("h3", "(root)", 2))

	cfg, err := os.ReadFile(s.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if line := s.Reload(t, string(cfg)+"\n[[site.route]]\npath = \"=/fixed\"\nrespond = \"fixed\\n\"\n"); !strings.Contains(line, "msg=reloaded") {
		t.Fatalf("reload: %s", line)
	}
	get(harness.H2, "/hello.txt")
	get(harness.H2, "/fixed")
	waitMetrics(series("h1", "(root)", 2), series("h2", "(root)", 3), series("h3", "(root)", 2), series("h2", "=/fixed", 1))
}
