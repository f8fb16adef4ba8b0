package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The testdata files are real output of wrk 4.1.0 and h2load (nghttp2
// 1.52.0) against anx and against small scripted servers (wrk_errors.txt:
// a server that closes connections, half of them mid-response).

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// size is v units of 1<<shift bytes, computed as parseBytes does.
func size(v float64, shift uint) int64 { return int64(v * float64(int64(1)<<shift)) }

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-6*math.Max(1, math.Abs(b)) }

func TestParseWrk(t *testing.T) {
	tests := []struct {
		file string
		want wrkResult
	}{
		{"wrk_latency.txt", wrkResult{Requests: 43020, Duration: time.Second, Bytes: size(52.76, 20),
			ReqPerSec: 42933.87, P99: 7640 * time.Microsecond}},
		{"wrk_10m.txt", wrkResult{Requests: 206, Duration: 1020 * time.Millisecond, Bytes: size(2.02, 30),
			ReqPerSec: 201.65}},
		{"wrk_close_tls.txt", wrkResult{Requests: 1430, Duration: 1010 * time.Millisecond, Bytes: size(1.83, 20),
			ReqPerSec: 1415.14}},
		// every response a 404: no good response per second, all errors
		{"wrk_404.txt", wrkResult{Requests: 25900, Duration: 1010 * time.Millisecond, Bytes: size(4.54, 20),
			ReqPerSec: 0, Errors: 25900}},
		{"wrk_errors.txt", wrkResult{Requests: 0, Duration: 1100 * time.Millisecond, Bytes: size(564.55, 10),
			ReqPerSec: 0, Errors: 28201}},
	}
	for _, tt := range tests {
		got, err := parseWrk(readTestdata(t, tt.file))
		if err != nil {
			t.Errorf("%s: %v", tt.file, err)
			continue
		}
		if got.Requests != tt.want.Requests || got.Duration != tt.want.Duration || got.Bytes != tt.want.Bytes ||
			!near(got.ReqPerSec, tt.want.ReqPerSec) || got.Errors != tt.want.Errors || got.P99 != tt.want.P99 {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.file, got, tt.want)
		}
	}
}

func TestParseWrkMBPerSec(t *testing.T) {
	got, err := parseWrk(readTestdata(t, "wrk_10m.txt"))
	if err != nil {
		t.Fatal(err)
	}
	// 2.02 GiB in 1.02 s
	if want := float64(size(2.02, 30)) / 1.02 / 1e6; math.Abs(got.MBPerSec()-want) > 1 {
		t.Errorf("MBPerSec = %.1f, want %.1f", got.MBPerSec(), want)
	}
}

func TestParseWrkNoResult(t *testing.T) {
	_, err := parseWrk(readTestdata(t, "wrk_refused.txt"))
	var e errNoResult
	if !errors.As(err, &e) || !strings.Contains(err.Error(), "Connection refused") {
		t.Errorf("err = %v, want errNoResult quoting the output", err)
	}
}

func TestParseH2load(t *testing.T) {
	tests := []struct {
		file string
		want h2loadResult
	}{
		{"h2load_h2.txt", h2loadResult{Duration: 1010 * time.Millisecond, ReqPerSec: 18393 / 1.01, Succeeded: 18393}},
		{"h2load_404.txt", h2loadResult{Duration: time.Second, ReqPerSec: 0, Failed: 34405}},
		{"h2load_refused.txt", h2loadResult{Duration: time.Second}},
	}
	for _, tt := range tests {
		got, err := parseH2load(readTestdata(t, tt.file))
		if err != nil {
			t.Errorf("%s: %v", tt.file, err)
			continue
		}
		if got.Duration != tt.want.Duration || !near(got.ReqPerSec, tt.want.ReqPerSec) ||
			got.Succeeded != tt.want.Succeeded || got.Failed != tt.want.Failed {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.file, got, tt.want)
		}
	}
	if _, err := parseH2load("h2load: command not found"); err == nil {
		t.Error("parseH2load of garbage: no error")
	}
}

func TestParseUnits(t *testing.T) {
	durations := map[string]time.Duration{"729.06us": 729060 * time.Nanosecond, "1.00ms": time.Millisecond,
		"2.00s": 2 * time.Second, "1.50m": 90 * time.Second, "1.00h": time.Hour}
	for in, want := range durations {
		if got, err := parseDuration(in); err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	sizes := map[string]int64{"512B": 512, "1.50KB": 1536, "235.49MB": size(235.49, 20), "2.00GB": 2 << 30}
	for in, want := range sizes {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "12", "1.0xs", "ms"} {
		if _, err := parseDuration(bad); err == nil {
			t.Errorf("parseDuration(%q): no error", bad)
		}
		if _, err := parseBytes(bad); err == nil {
			t.Errorf("parseBytes(%q): no error", bad)
		}
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
		ok   bool
	}{
		{nil, 0, false},
		{[]float64{7}, 7, true},
		{[]float64{3, 1, 2}, 2, true},
		{[]float64{10, 1, 4, 2}, 3, true},
		{[]float64{5, 5, 1}, 5, true},
	}
	for _, tt := range tests {
		in := append([]float64(nil), tt.in...)
		got, ok := median(in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("median(%v) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
		for i := range in {
			if in[i] != tt.in[i] {
				t.Errorf("median(%v) reordered its argument to %v", tt.in, in)
				break
			}
		}
	}
}

// sampleReport has anx and nginx on one load, and h3 for anx only.
func sampleReport() *report {
	rps := metric{Key: "req_s", Unit: "req/s"}
	r1 := &serverResult{Runs: []map[string]float64{{"req_s": 300}, {"req_s": 100}, {"req_s": 200}}}
	r2 := &serverResult{Runs: []map[string]float64{{"req_s": 400}}}
	r3 := &serverResult{Runs: []map[string]float64{{"req_s": 50}}}
	for _, r := range []*serverResult{r1, r2, r3} {
		r.summarize()
	}
	return &report{
		Machine:  machine{CPU: "Test CPU <&>", Cores: 2, Kernel: "6.1", Go: "go1.26"},
		Duration: "1s", Runs: 3,
		Servers: []serverInfo{{Name: "anx", Version: "anx (devel)"}, {Name: "nginx", Version: "nginx/1.22.1"}},
		Loads: []*loadReport{
			{Name: "h1", Title: "HTTP/1.1 & friends", Metrics: []metric{rps}, Results: map[string]*serverResult{"anx": r1, "nginx": r2}},
			{Name: "h3", Title: "HTTP/3", Metrics: []metric{rps}, Results: map[string]*serverResult{"anx": r3}},
		},
	}
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	if err := writeTable(&b, sampleReport()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("table has %d lines, want 3:\n%s", len(lines), b.String())
	}
	want := [][]string{
		{"load", "unit", "anx", "nginx", "anx/nginx"},
		{"HTTP/1.1", "&", "friends", "req/s", "200", "400", "0.50x"},
		{"HTTP/3", "req/s", "50", "n/a", "-"},
	}
	for i, w := range want {
		if got := strings.Fields(lines[i]); strings.Join(got, " ") != strings.Join(w, " ") {
			t.Errorf("line %d = %q, want fields %q", i, lines[i], w)
		}
	}
}

func TestWriteJSON(t *testing.T) {
	var b bytes.Buffer
	if err := writeJSON(&b, sampleReport()); err != nil {
		t.Fatal(err)
	}
	var back report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatalf("the JSON does not read back: %v\n%s", err, b.String())
	}
	if got := back.Loads[0].Results["anx"].Median["req_s"]; got != 200 {
		t.Errorf("anx's median read back = %v, want 200", got)
	}
	if _, ok := back.Loads[1].Results["nginx"]; ok {
		t.Error("nginx has an h3 result; want none (n/a)")
	}
	if back.Machine.CPU != "Test CPU <&>" || back.Runs != 3 {
		t.Errorf("machine/runs read back as %+v / %d", back.Machine, back.Runs)
	}
}

func TestWriteSVG(t *testing.T) {
	var b bytes.Buffer
	if err := writeSVG(&b, sampleReport()); err != nil {
		t.Fatal(err)
	}
	// Well-formed XML, one bar per server that has a value, bars scaled to the group's largest.
	dec := xml.NewDecoder(&b)
	var widths []string
	var texts []string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the SVG is not well-formed XML: %v", err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			if el.Name.Local == "rect" {
				for _, a := range el.Attr {
					if a.Name.Local == "width" && a.Value != "100%" {
						widths = append(widths, a.Value)
					}
				}
			}
		case xml.CharData:
			if s := strings.TrimSpace(string(el)); s != "" {
				texts = append(texts, s)
			}
		}
	}
	if got, want := strings.Join(widths, ","), "300,600,600"; got != want {
		t.Errorf("bar widths = %s, want %s (anx 200 and nginx 400 of 400; anx 50 of 50)", got, want)
	}
	all := strings.Join(texts, "|")
	for _, want := range []string{"HTTP/1.1 & friends — req/s", "Test CPU <&>", "n/a", "200", "400"} {
		if !strings.Contains(all, want) {
			t.Errorf("the SVG's text lacks %q: %s", want, all)
		}
	}
}

func TestSchedule(t *testing.T) {
	format := func(steps []step) string {
		var parts []string
		for _, st := range steps {
			parts = append(parts, fmt.Sprintf("%d%d%d", st.load, st.run, st.server))
		}
		return strings.Join(parts, " ")
	}
	// load, run, server
	if got, want := format(schedule(2, 2, 2, false)), "000 010 100 110 001 011 101 111"; got != want {
		t.Errorf("one server after another: %s, want %s", got, want)
	}
	if got, want := format(schedule(2, 2, 2, true)), "000 001 010 011 100 101 110 111"; got != want {
		t.Errorf("interleaved: %s, want %s", got, want)
	}
	for _, interleave := range []bool{false, true} {
		steps := schedule(3, 2, 3, interleave)
		var lasts []int
		for k := range steps {
			if isLast(steps, k) {
				lasts = append(lasts, k)
			}
		}
		want := []int{5, 11, 17} // each server's sixth step
		if interleave {
			want = []int{15, 16, 17} // the last round
		}
		if !slices.Equal(lasts, want) {
			t.Errorf("interleave %v: last steps at %v, want %v", interleave, lasts, want)
		}
	}
}
