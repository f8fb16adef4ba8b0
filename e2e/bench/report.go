package main

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
)

// report is everything one bench run found; it is the JSON file's schema.
type report struct {
	Machine  machine       `json:"machine"`
	Duration string        `json:"duration"` // of each load run
	Runs     int           `json:"runs"`     // runs per load and server; the median is reported
	Servers  []serverInfo  `json:"servers"`
	Upstream string        `json:"upstream,omitempty"` // the nginx the proxy loads forward to
	Loads    []*loadReport `json:"loads"`
}

// machine describes where the numbers come from.
type machine struct {
	CPU     string            `json:"cpu"`
	Cores   int               `json:"cores"`
	Kernel  string            `json:"kernel"`
	Go      string            `json:"go"`
	LoadAvg string            `json:"loadavg_at_start"` // others' work on the machine skews the numbers
	Tools   map[string]string `json:"tools"`            // load generators' versions
}

// serverInfo names one server and how it ran.
type serverInfo struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	LoadAvg string `json:"loadavg_at_start,omitempty"`
	Note    string `json:"note,omitempty"` // why it did not run, or what went wrong
}

// loadReport holds one load's results by server.
type loadReport struct {
	Name    string                   `json:"name"`
	Title   string                   `json:"title"`
	How     string                   `json:"how"`
	Metrics []metric                 `json:"metrics"`
	Results map[string]*serverResult `json:"results"` // by server name; absent: n/a
}

// serverResult holds one server's runs of one load.
type serverResult struct {
	Runs   []map[string]float64 `json:"runs"`
	Median map[string]float64   `json:"median"` // of each metric over the runs
	Errors []string             `json:"errors,omitempty"`
}

// median returns the median of xs (the mean of the middle two for an even
// count) and false when xs is empty.
func median(xs []float64) (float64, bool) {
	if len(xs) == 0 {
		return 0, false
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m], true
	}
	return (s[m-1] + s[m]) / 2, true
}

// summarize fills Median from Runs, per metric key.
func (r *serverResult) summarize() {
	by := map[string][]float64{}
	for _, run := range r.Runs {
		for k, v := range run {
			by[k] = append(by[k], v)
		}
	}
	r.Median = map[string]float64{}
	for k, vs := range by {
		r.Median[k], _ = median(vs)
	}
}

// describeMachine reads the CPU, cores, kernel and load from /proc.
func describeMachine(tools map[string]string) machine {
	m := machine{CPU: "unknown", Cores: runtime.NumCPU(), Go: runtime.Version(), Tools: tools}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.LoadAvg = loadAvg()
	return m
}

// loadAvg returns the 1, 5 and 15 minute load averages: more than a little
// before a server starts means something else is using the CPUs.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

// format renders v with a precision that suits its size.
func format(v float64) string {
	switch {
	case v >= 100 || v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// cell returns the median of key for server in lr, as text ("n/a" if none).
func cell(lr *loadReport, server, key string) (float64, string) {
	r := lr.Results[server]
	if r == nil || len(r.Runs) == 0 {
		return 0, "n/a"
	}
	v := r.Median[key]
	return v, format(v)
}

// ratio returns anx/other for key as text.
func ratio(lr *loadReport, key, other string) string {
	a, at := cell(lr, "anx", key)
	o, ot := cell(lr, other, key)
	if at == "n/a" || ot == "n/a" || o == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/o)
}

// writeTable prints one row per load and metric: each server's median and
// anx's ratio to each other server.
func writeTable(w io.Writer, rep *report) error {
	var names, others []string
	for _, s := range rep.Servers {
		names = append(names, s.Name)
		if s.Name != "anx" {
			others = append(others, s.Name)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := []string{"load", "unit"}
	head = append(head, names...)
	if slices.Contains(names, "anx") {
		for _, o := range others {
			head = append(head, "anx/"+o)
		}
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for _, lr := range rep.Loads {
		for _, m := range lr.Metrics {
			unit := m.Unit
			if m.Lower {
				unit += " (lower better)"
			}
			row := []string{lr.Title, unit}
			for _, n := range names {
				_, s := cell(lr, n, m.Key)
				row = append(row, s)
			}
			if slices.Contains(names, "anx") {
				for _, o := range others {
					row = append(row, ratio(lr, m.Key, o))
				}
			}
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
	}
	return tw.Flush()
}

// writeJSON writes rep as indented JSON.
func writeJSON(w io.Writer, rep *report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// SVG layout, in pixels.
const (
	svgWidth  = 960
	svgLabel  = 170 // server names, left of the bars
	svgBarMax = 600 // the longest bar of a group
	svgBar    = 16  // height of one bar
	svgGap    = 4   // between bars
	svgHead   = 26  // a group's title line
	svgTop    = 56  // the chart's title and machine line
)

// svgColor returns a server's bar colour (anx always the same).
func svgColor(i int) string {
	colors := []string{"#d9480f", "#1c7ed6", "#2f9e44", "#7048e8", "#868e96"}
	return colors[i%len(colors)]
}

// writeSVG draws one group of horizontal bars per load and metric, each bar
// scaled to the largest value of its group; values are printed beside them.
func writeSVG(w io.Writer, rep *report) error {
	var b strings.Builder
	type group struct {
		lr *loadReport
		m  metric
	}
	var groups []group
	for _, lr := range rep.Loads {
		for _, m := range lr.Metrics {
			groups = append(groups, group{lr, m})
		}
	}
	n := len(rep.Servers)
	groupH := svgHead + n*(svgBar+svgGap) + 10
	height := svgTop + len(groups)*groupH + 10
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		svgWidth, height, svgWidth, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#fff"/>`+"\n")
	fmt.Fprintf(&b, `<text x="10" y="22" font-size="16" font-weight="bold">anx bench: median of %d runs of %s each</text>`+"\n",
		rep.Runs, html.EscapeString(rep.Duration))
	fmt.Fprintf(&b, `<text x="10" y="42" fill="#555">%s</text>`+"\n", html.EscapeString(fmt.Sprintf("%s, %d cores, Linux %s, %s",
		rep.Machine.CPU, rep.Machine.Cores, rep.Machine.Kernel, rep.Machine.Go)))
	for gi, g := range groups {
		y := svgTop + gi*groupH
		title := g.lr.Title + " — " + g.m.Unit
		if g.m.Lower {
			title += " (lower is better)"
		}
		fmt.Fprintf(&b, `<text x="10" y="%d" font-weight="bold">%s</text>`+"\n", y+svgHead-8, html.EscapeString(title))
		top := 0.0
		for _, s := range rep.Servers {
			if v, t := cell(g.lr, s.Name, g.m.Key); t != "n/a" {
				top = max(top, v)
			}
		}
		for si, s := range rep.Servers {
			by := y + svgHead + si*(svgBar+svgGap)
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", svgLabel-8, by+svgBar-4, html.EscapeString(s.Name))
			v, t := cell(g.lr, s.Name, g.m.Key)
			width := 0
			if t != "n/a" && top > 0 {
				width = max(1, int(v/top*svgBarMax))
				fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`+"\n", svgLabel, by, width, svgBar, svgColor(si))
			}
			fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", svgLabel+width+6, by+svgBar-4, html.EscapeString(t))
		}
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
