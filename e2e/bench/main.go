// Command bench measures anx beside nginx, h2o, HAProxy and Caddy on
// loopback, with the same site, the same certificate (anx serves a leaf of
// its own local CA), the same worker count and the same loads, and reports
// medians.
//
// It runs each server in turn on free ports of 127.0.0.1, runs every load
// on it -runs times for -duration each, and then prints a table (with
// anx's ratio to each other server) and writes results.json and
// results.svg into -out. Load generators: wrk and h2load (one thread each),
// and Go clients for HTTP/3, idle connections and open-loop latency.
// nginx, h2o, wrk and h2load come from Debian (e2e/bench/install.sh);
// Caddy runs only if it is on PATH.
//
// Usage:
//
//	go run ./e2e/bench [-anx bin/anx] [-duration 5s] [-runs 3]
//	    [-only load,...] [-servers anx,anx-log,anx-limit,nginx,h2o,haproxy,caddy] [-out e2e/bench/out]
//	    [-interleave]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// options are the command's flags.
type options struct {
	anx        string
	duration   time.Duration
	runs       int
	only       []string // load names; empty: all
	servers    []string
	out        string
	interleave bool
}

func main() {
	if code, ok := runHelper(os.Args[1:]); ok { // the tunnel loads' upstream or copying relay
		os.Exit(code)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// parseFlags reads args into options and checks them against the known
// loads and servers.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	var only, servers string
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.anx, "anx", "bin/anx", "the anx binary to measure")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "how long each load runs (whole seconds for wrk and h2load)")
	fs.IntVar(&o.runs, "runs", 3, "runs of each load on each server; the median is reported")
	fs.StringVar(&only, "only", "", "comma-separated loads to run (default all): "+strings.Join(loadNames(), ","))
	fs.StringVar(&servers, "servers", "anx,anx-log,anx-limit,nginx,h2o,haproxy,caddy,copy", "comma-separated servers to measure; caddy is skipped if not on PATH; copy (a copying relay) takes only the tunnel loads; anx-log (anx with its access log to a file) only h1-plain-1k, h1-tls-1k, h2-1k and h3-1k; anx-limit (anx with a rate limit never reached on the proxied route) only proxy-h1, proxy-h1-tls and proxy-h2")
	fs.StringVar(&o.out, "out", "e2e/bench/out", "directory for results.json and results.svg")
	fs.BoolVar(&o.interleave, "interleave", false, "run each load's runs in rounds over all the servers (all kept running) instead of one server after another")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if o.duration < time.Second || o.runs < 1 {
		return o, errors.New("-duration must be at least 1s and -runs at least 1")
	}
	o.only = split(only)
	for _, n := range o.only {
		if !slices.Contains(loadNames(), n) {
			return o, fmt.Errorf("-only: unknown load %q (known: %s)", n, strings.Join(loadNames(), ","))
		}
	}
	o.servers = split(servers)
	for _, n := range o.servers {
		if !slices.ContainsFunc(specs(), func(s *spec) bool { return s.name == n }) {
			return o, fmt.Errorf("-servers: unknown server %q", n)
		}
	}
	return o, nil
}

func split(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func loadNames() []string {
	var names []string
	for _, l := range loads() {
		names = append(names, l.name)
	}
	return names
}

// run is the whole command; it returns the exit code after every process
// it started has been stopped.
func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	}
	// Ctrl-C and SIGTERM cancel the loads; the servers are then stopped
	// below before exit. Later signals are caught too, so stopping finishes.
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	rep, err := bench(ctx, o, stdout)
	if ctx.Err() != nil {
		// Partial numbers would overwrite a complete earlier run: keep that.
		fmt.Fprintln(stderr, "bench: interrupted; every process it started is stopped; nothing written")
		return 130
	}
	if rep != nil && len(rep.Loads) > 0 {
		if werr := writeOutputs(o.out, rep, stdout); werr != nil {
			fmt.Fprintln(stderr, "bench:", werr)
			return 1
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	return 0
}

// bench runs the selected loads on the selected servers.
func bench(ctx context.Context, o options, progress io.Writer) (*report, error) {
	for _, t := range []string{"wrk", "h2load"} {
		if _, err := exec.LookPath(t); err != nil {
			return nil, fmt.Errorf("%s is not installed (run e2e/bench/install.sh as root)", t)
		}
	}
	tmp, err := os.MkdirTemp("", "anx-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	// nginx's and h2o's workers run as nobody when started by root: they
	// must be able to read the site.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, err
	}
	f, err := writeSite(tmp)
	if err != nil {
		return nil, err
	}
	rep := &report{
		Machine: describeMachine(map[string]string{
			"wrk":    firstLine("wrk", "-v"),
			"h2load": firstLine("h2load", "--version"),
		}),
		Duration: o.duration.String(),
		Runs:     o.runs,
	}
	fmt.Fprintf(progress, "machine: %s, %d cores, Linux %s, %s, load average %s\n",
		rep.Machine.CPU, rep.Machine.Cores, rep.Machine.Kernel, rep.Machine.Go, rep.Machine.LoadAvg)
	for _, l := range loads() {
		if len(o.only) == 0 || slices.Contains(o.only, l.name) {
			rep.Loads = append(rep.Loads, &loadReport{Name: l.name, Title: l.title, How: l.how,
				Metrics: l.metrics, Results: map[string]*serverResult{}})
		}
	}
	up, upErr := startSelectedUpstream(ctx, o, tmp, f, progress)
	if up != nil {
		defer up.stop()
		rep.Upstream = firstLine(up.bin, "-v") + ", 1 worker, plain HTTP/1.1 keep-alive"
	}
	tup, tupErr := startSelectedTunnelUpstream(ctx, o, tmp, f, progress)
	if tup != nil {
		defer tup.stop()
	}
	var runs []*benchRun
	defer func() {
		for _, b := range runs {
			b.stop()
		}
	}()
	for _, sp := range specs() {
		if !slices.Contains(o.servers, sp.name) || !takesAny(sp, rep.Loads) {
			continue // not asked for, or no selected load applies: no column
		}
		bin, err := sp.find(o.anx)
		if err != nil {
			fmt.Fprintf(progress, "[%s] skipped: %v\n", sp.name, err)
			if sp.name != "caddy" { // optional: no column
				rep.Servers = append(rep.Servers, serverInfo{Name: sp.name, Note: "not found: " + err.Error()})
			}
			continue
		}
		runs = append(runs, &benchRun{o: o, sp: sp, bin: bin, dir: filepath.Join(tmp, sp.name), f: f, up: up, upErr: upErr, tup: tup, tupErr: tupErr,
			progress: progress, info: serverInfo{Name: sp.name, Version: sp.version(bin)}})
	}
	steps := schedule(len(rep.Loads), o.runs, len(runs), o.interleave)
	for k, st := range steps {
		b, lr := runs[st.server], rep.Loads[st.load]
		if err := b.step(ctx, lr, st.run); err != nil {
			return rep, errors.New("interrupted")
		}
		if isLast(steps, k) {
			b.stop() // one server at a time unless interleaved
		}
	}
	for _, b := range runs {
		b.info.Note = b.note()
		if b.info.Note != "" {
			fmt.Fprintf(progress, "[%s] %s\n", b.sp.name, b.info.Note)
		}
		rep.Servers = append(rep.Servers, b.info)
	}
	slices.SortStableFunc(rep.Servers, func(a, b serverInfo) int { return specIndex(a.Name) - specIndex(b.Name) })
	for _, lr := range rep.Loads {
		for _, res := range lr.Results {
			res.summarize()
		}
	}
	return rep, nil
}

// specIndex returns the place of the server named name in specs().
func specIndex(name string) int {
	return slices.IndexFunc(specs(), func(sp *spec) bool { return sp.name == name })
}

// step is one run of one load on one server: indexes into the selected
// loads, the runs and the servers found.
type step struct{ load, run, server int }

// schedule returns the order of the steps: by default each server runs
// every load -runs times before the next server starts; interleaved, each
// run of a load goes round every server before the next run, so that a
// change in what else the machine does spreads over all the servers.
func schedule(loads, runs, servers int, interleave bool) []step {
	var out []step
	if interleave {
		for l := range loads {
			for r := range runs {
				for s := range servers {
					out = append(out, step{l, r, s})
				}
			}
		}
		return out
	}
	for s := range servers {
		for l := range loads {
			for r := range runs {
				out = append(out, step{l, r, s})
			}
		}
	}
	return out
}

// isLast says whether steps[k] is the last step of its server.
func isLast(steps []step, k int) bool {
	for _, st := range steps[k+1:] {
		if st.server == steps[k].server {
			return false
		}
	}
	return true
}

// takes says whether sp can run l.
func takes(sp *spec, l *load) bool {
	return sp.config(l.role) != nil && (!l.h3 || sp.h3) && (!l.h2c || sp.h2c != noH2C && l.role == serveFiles) &&
		(len(sp.loads) == 0 || slices.Contains(sp.loads, l.name))
}

// takesAny says whether sp can run one of the selected loads.
func takesAny(sp *spec, selected []*loadReport) bool {
	for _, lr := range selected {
		if takes(sp, loadByName(lr.Name)) {
			return true
		}
	}
	return false
}

// loadByName returns the load named name (a name from loads()).
func loadByName(name string) *load {
	all := loads()
	return all[slices.IndexFunc(all, func(l *load) bool { return l.name == name })]
}

// startSelectedUpstream starts the upstream nginx if a selected load
// proxies; it returns nil and why not when it cannot start.
func startSelectedUpstream(ctx context.Context, o options, tmp string, f files, progress io.Writer) (*instance, error) {
	need := false
	for _, l := range loads() {
		need = need || l.role == proxyToUpstream && (len(o.only) == 0 || slices.Contains(o.only, l.name))
	}
	if !need {
		return nil, nil
	}
	up, err := startUpstream(ctx, filepath.Join(tmp, "upstream"), f)
	if err != nil {
		fmt.Fprintf(progress, "[upstream] %v: the proxy loads cannot run\n", err)
		return nil, err
	}
	fmt.Fprintf(progress, "[upstream] %s, 1 worker: http 127.0.0.1:%d, pid %d\n",
		firstLine(up.bin, "-v"), up.httpPort, up.cmd.Process.Pid)
	return up, nil
}

// startSelectedTunnelUpstream starts the tunnel upstream if a selected
// load tunnels; it returns nil and why not when it cannot start.
func startSelectedTunnelUpstream(ctx context.Context, o options, tmp string, f files, progress io.Writer) (*instance, error) {
	need := false
	for _, l := range loads() {
		need = need || l.role == tunnelToUpstream && (len(o.only) == 0 || slices.Contains(o.only, l.name))
	}
	if !need {
		return nil, nil
	}
	up, err := startTunnelUpstream(ctx, filepath.Join(tmp, "tunnel-upstream"), f)
	if err != nil {
		fmt.Fprintf(progress, "[tunnel-upstream] %v: the tunnel loads cannot run\n", err)
		return nil, err
	}
	fmt.Fprintf(progress, "[tunnel-upstream] %s: http 127.0.0.1:%d, pid %d\n", up.spec.version(""), up.httpPort, up.cmd.Process.Pid)
	return up, nil
}

// benchRun runs the selected loads on one server: it starts the server
// once for each role a load needs (files, proxy), on first use, and keeps
// it until stop. Only bench's goroutine uses it.
type benchRun struct {
	o        options
	sp       *spec
	bin, dir string
	f        files
	up       *instance // the upstream nginx; nil if it could not start
	upErr    error     // why up is nil
	tup      *instance // the tunnel upstream; nil if it could not start or no tunnel load runs
	tupErr   error     // why tup is nil
	progress io.Writer
	info     serverInfo // Version set; LoadAvg at the first start, Note at the end

	started bool
	running map[role]*instance // started on first use
	failed  map[role]error     // the role's server could not start: its loads are skipped
	exited  error              // the server died during a load: nothing more runs on it
}

// step runs run number i of lr on the server if it takes the load; it
// returns an error only when ctx is done.
func (b *benchRun) step(ctx context.Context, lr *loadReport, i int) error {
	l := loadByName(lr.Name)
	if !takes(b.sp, l) || b.exited != nil {
		return nil // n/a
	}
	if !b.started {
		b.started = true
		b.running, b.failed = map[role]*instance{}, map[role]error{}
		b.info.LoadAvg = loadAvg()
		fmt.Fprintf(b.progress, "[%s] %s (%s); load average before: %s\n", b.sp.name, b.info.Version, b.bin, b.info.LoadAvg)
		if err := os.MkdirAll(b.dir, 0o755); err != nil {
			b.exited = err
			return nil
		}
	}
	shared, err := b.instance(ctx, l.role)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return nil // said once by instance; the load is n/a
	}
	res := lr.Results[b.sp.name]
	if res == nil {
		res = &serverResult{}
		lr.Results[b.sp.name] = res
	}
	vals, err := b.runOnce(ctx, l, shared)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if exited := exitedError(""); errors.As(err, &exited) {
		b.exited = err
		fmt.Fprintf(b.progress, "[%s] %v\n", b.sp.name, err)
		return nil
	}
	if err != nil {
		res.Errors = append(res.Errors, err.Error())
		fmt.Fprintf(b.progress, "[%s] %-13s run %d/%d: error: %v\n", b.sp.name, l.name, i+1, b.o.runs, err)
		return nil
	}
	res.Runs = append(res.Runs, vals)
	fmt.Fprintf(b.progress, "[%s] %-13s run %d/%d: %s\n", b.sp.name, l.name, i+1, b.o.runs, describe(l, vals))
	return nil
}

// stop stops every instance of the server; calling it again is harmless.
func (b *benchRun) stop() {
	for r, in := range b.running {
		in.stop()
		delete(b.running, r)
	}
}

// note says what went wrong on the server ("" if nothing).
func (b *benchRun) note() string {
	var errs []error
	for _, r := range []role{serveFiles, proxyToUpstream, tunnelToUpstream} {
		if err := b.failed[r]; err != nil {
			errs = append(errs, fmt.Errorf("%s loads not run: %w", r, err))
		}
	}
	if b.exited != nil {
		errs = append(errs, b.exited)
	}
	if err := errors.Join(errs...); err != nil {
		return err.Error()
	}
	return ""
}

// instance returns the server running in role r, started on first use.
func (b *benchRun) instance(ctx context.Context, r role) (*instance, error) {
	if in := b.running[r]; in != nil {
		return in, nil
	}
	if err := b.failed[r]; err != nil {
		return nil, err
	}
	in, err := b.start(ctx, r, filepath.Join(b.dir, r.String()))
	if err != nil {
		b.failed[r] = err
		fmt.Fprintf(b.progress, "[%s] %s: cannot start: %v\n", b.sp.name, r, err)
		return nil, err
	}
	b.running[r] = in
	fmt.Fprintf(b.progress, "[%s] ready (%s): http 127.0.0.1:%d, https 127.0.0.1:%d, pid %d\n",
		b.sp.name, r, in.httpPort, in.httpsPort, in.cmd.Process.Pid)
	return in, nil
}

// start starts sp in role r with its files in dir.
func (b *benchRun) start(ctx context.Context, r role, dir string) (*instance, error) {
	up, upErr := b.up, b.upErr
	if r == tunnelToUpstream {
		up, upErr = b.tup, b.tupErr
	}
	if r != serveFiles && up == nil {
		return nil, fmt.Errorf("no upstream: %w", upErr)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if r == serveFiles {
		up = nil
	}
	return start(ctx, b.sp, r, up, b.bin, dir, b.f)
}

// exitedError says the server died during a load: its other loads cannot run.
type exitedError string

func (e exitedError) Error() string { return string(e) }

// runOnce runs l once on shared, or on a server started for this run alone
// when l needs a fresh one (and stopped before it returns).
func (b *benchRun) runOnce(ctx context.Context, l *load, shared *instance) (map[string]float64, error) {
	in := shared
	if l.fresh {
		var err error
		if in, err = b.start(ctx, l.role, filepath.Join(b.dir, l.name)); err != nil {
			return nil, err
		}
		defer in.stop()
	}
	vals, err := l.run(ctx, in, b.o.duration)
	for _, p := range []*instance{in, in.upstream} {
		if p == nil {
			continue
		}
		select {
		case <-p.done:
			return nil, exitedError(fmt.Sprintf("%s (%s) exited during %s: %v; output:\n%s",
				p.spec.name, p.role, l.name, p.cmd.ProcessState, clip(p.log.String())))
		default:
		}
	}
	return vals, err
}

// describe formats one run's values for the progress line.
func describe(l *load, vals map[string]float64) string {
	var parts []string
	for _, m := range l.metrics {
		parts = append(parts, format(vals[m.Key])+" "+m.Unit)
	}
	if e, ok := vals["errors"]; ok && !slices.Contains(l.metrics, failures()) {
		parts = append(parts, format(e)+" failed")
	}
	return strings.Join(parts, ", ")
}

// writeOutputs prints the table and writes results.json and results.svg.
func writeOutputs(dir string, rep *report, stdout io.Writer) error {
	fmt.Fprintln(stdout)
	for _, s := range rep.Servers {
		line := fmt.Sprintf("%-6s %s", s.Name, s.Version)
		if s.Note != "" {
			line += "  [" + clip(s.Note) + "]"
		}
		fmt.Fprintln(stdout, line)
	}
	if rep.Upstream != "" {
		fmt.Fprintf(stdout, "proxy loads' upstream: %s\n", rep.Upstream)
	}
	fmt.Fprintf(stdout, "median of %d runs of %s; n/a: the server does not speak it or did not run\n\n", rep.Runs, rep.Duration)
	if err := writeTable(stdout, rep); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	for _, lr := range rep.Loads {
		fmt.Fprintf(stdout, "%-14s %s\n", lr.Name, lr.How)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, write := range map[string]func(io.Writer, *report) error{
		"results.json": writeJSON, "results.svg": writeSVG,
	} {
		path := filepath.Join(dir, name)
		fh, err := os.Create(path)
		if err != nil {
			return err
		}
		err = write(fh, rep)
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		fmt.Fprintln(stdout, "wrote", path)
	}
	return nil
}
