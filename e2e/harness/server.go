package harness

import (
	"bufio"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"
)

// SafetyNet is the bound of the harness's waits for an event (a log line,
// a response, a close, a peer's exit): a safety net against a hang, never
// a measure of speed, sized for a -race anx on a busy 2-core machine,
// where what takes milliseconds idle can take seconds. A wait that ends
// with its event does not wait it out.
const SafetyNet = 2 * time.Minute

// ReadyTimeout bounds the wait for the `msg=ready` log line (anx is ready
// within a second or two on a busy machine with -race).
const ReadyTimeout = SafetyNet

// StopTimeout bounds the wait for exit after SIGTERM before SIGKILL: a
// safety net well above anx's longest drain in these tests (30 s) plus a
// -race binary's slower exit.
const StopTimeout = SafetyNet

// Options say how Start runs anx. The zero value serves a fixture site
// (WriteSite) with `--domain localhost` in redirect mode.
type Options struct {
	// Config, when not empty, is a text/template of a TOML config (see
	// Config.TOML); anx then runs with --config and no other flags but Args.
	Config string
	// HTTPMode is passed as --http-mode when Config is empty.
	HTTPMode string
	// Args are extra arguments after `run`.
	Args []string
	// Site writes the site into root; nil means WriteSite.
	Site func(t testing.TB, root string)
	// ExpectedErrors are regular expressions for the level=ERROR lines the
	// test provokes: at cleanup, each level=ERROR line of anx's log must
	// match one of them, or the test fails (LogProblems). None: anx must
	// log no ERROR. The test itself checks that the lines it expects came.
	ExpectedErrors []string
}

// Server is a running anx process on loopback.
type Server struct {
	HTTPSPort  int    // TCP (h1, h2) and UDP (h3) port
	HTTPPort   int    // plain HTTP port
	HTTPS      string // "127.0.0.1:<HTTPSPort>"
	HTTP       string // "127.0.0.1:<HTTPPort>"
	Dir        string // the test's temporary directory
	Data       string // --data dir
	Root       string // the site root
	ConfigPath string // the config file, if any

	t       testing.TB
	cmd     *exec.Cmd
	log     *lineLog
	done    chan struct{} // closed when the process has exited
	state   *os.ProcessState
	stopped bool // Signal was called: exit is expected
	mu      sync.Mutex
	pool    *x509.CertPool   // anx's root, loaded once ready
	errors  []*regexp.Regexp // Options.ExpectedErrors
}

// Start runs `anx run` with a fresh data dir and free ports, waits for its
// `msg=ready` line and registers its stop (SIGTERM, then SIGKILL) in
// t.Cleanup. The cleanup fails the test if anx exited before it, exits
// other than 0 after SIGTERM, or logged a race, a panic or an unexpected
// ERROR (Options.ExpectedErrors); on test failure the process's stderr goes
// to the test log. It retries with new ports (3 times) if anx reports an
// address in use.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	dir, root := prepareSite(t, o)
	var last string
	for range 3 {
		s := newServer(t, dir, root, NewPlacement(t))
		err := s.start(o)
		if err == nil {
			return s
		}
		last = err.Error()
		if !strings.Contains(last, "in use") {
			break
		}
	}
	t.Fatalf("harness: anx did not become ready: %s", last)
	return nil
}

// Placement fixes where an anx run listens and keeps its data, for runs
// that something must know in advance (Pebble validates on anx's ports)
// or that follow each other on the same data dir (a restart).
type Placement struct {
	HTTPSPort int    // TCP (h1, h2) and UDP (h3)
	HTTPPort  int    // plain HTTP
	Data      string // the --data dir (it need not exist yet)
}

// NewPlacement picks free ports (https free on TCP and UDP) and a data dir
// path under a new temporary directory.
func NewPlacement(t testing.TB) Placement {
	t.Helper()
	return Placement{HTTPSPort: FreePort(t), HTTPPort: FreeTCPPort(t), Data: filepath.Join(t.TempDir(), "data")}
}

// StartAt is Start on pl's ports and data dir: anx runs like Start runs
// it (fresh dir and site, Options as for Start, stopped in t.Cleanup),
// but without retrying on other ports, since pl is fixed. The internal CA's
// root must exist once anx is ready (as for Start), so configs should
// serve localhost too.
func StartAt(t testing.TB, o Options, pl Placement) *Server {
	t.Helper()
	dir, root := prepareSite(t, o)
	s := newServer(t, dir, root, pl)
	if err := s.start(o); err != nil {
		t.Fatalf("harness: anx did not become ready on %s and %s: %v", s.HTTPS, s.HTTP, err)
	}
	return s
}

// prepareSite makes the test's directory and writes the site (o.Site, or
// WriteSite) into its "site" folder.
func prepareSite(t testing.TB, o Options) (dir, root string) {
	t.Helper()
	dir = t.TempDir()
	root = filepath.Join(dir, "site")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	site := o.Site
	if site == nil {
		site = WriteSite
	}
	site(t, root)
	return dir, root
}

// newServer is a Server, not started yet, on pl on loopback.
func newServer(t testing.TB, dir, root string, pl Placement) *Server {
	return &Server{Dir: dir, Root: root, t: t, HTTPSPort: pl.HTTPSPort, HTTPPort: pl.HTTPPort, Data: pl.Data,
		HTTPS: loopback(pl.HTTPSPort), HTTP: loopback(pl.HTTPPort)}
}

// loopback returns "127.0.0.1:<port>".
func loopback(port int) string { return net.JoinHostPort("127.0.0.1", itoa(port)) }

// start launches the process once and waits for ready.
func (s *Server) start(o Options) error {
	args, err := s.args(o)
	if err != nil {
		return err
	}
	if s.errors, err = compileExpected(o.ExpectedErrors); err != nil {
		return err
	}
	s.cmd = exec.Command(Binary(), args...)
	s.cmd.Dir = s.Dir
	s.cmd.Stdout = io.Discard
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		return err
	}
	s.log = newLineLog()
	s.done = make(chan struct{})
	if err := s.cmd.Start(); err != nil {
		return err
	}
	go s.log.copy(stderr)
	go func() {
		<-s.log.closed // stderr at EOF: the process has exited or closed it
		_ = s.cmd.Wait()
		s.mu.Lock()
		s.state = s.cmd.ProcessState
		s.mu.Unlock()
		close(s.done)
	}()
	if err := s.waitReady(); err != nil {
		s.kill()
		return fmt.Errorf("%v; args %q; stderr:\n%s", err, args, s.log.String())
	}
	if s.pool, err = loadPool(s.CAPath()); err != nil {
		s.kill()
		return err
	}
	s.t.Cleanup(s.cleanup)
	return nil
}

// args builds the command line of `anx run`.
func (s *Server) args(o Options) ([]string, error) {
	if o.Config == "" {
		args := []string{"run", "--root", s.Root, "--domain", "localhost",
			"--https", s.HTTPS, "--http", s.HTTP, "--data", s.Data}
		if o.HTTPMode != "" {
			args = append(args, "--http-mode", o.HTTPMode)
		}
		return append(args, o.Args...), nil
	}
	text, err := s.render(o.Config)
	if err != nil {
		return nil, err
	}
	s.ConfigPath = filepath.Join(s.Dir, "anx.toml")
	if err := os.WriteFile(s.ConfigPath, []byte(text), 0o644); err != nil {
		return nil, err
	}
	return append([]string{"run", "--config", s.ConfigPath}, o.Args...), nil
}

// render fills a config template with the server's addresses and dirs.
func (s *Server) render(tmpl string) (string, error) {
	tp, err := template.New("config").Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return "", fmt.Errorf("harness: config template: %w", err)
	}
	var b strings.Builder
	if err := tp.Execute(&b, s); err != nil {
		return "", fmt.Errorf("harness: config template: %w", err)
	}
	return b.String(), nil
}

// waitReady waits for a stderr line with msg=ready, the exit, or the timeout.
func (s *Server) waitReady() error {
	select {
	case <-s.log.ready:
		return nil
	case <-s.done:
		return fmt.Errorf("anx exited before ready (%v)", s.state)
	case <-time.After(ReadyTimeout):
		return fmt.Errorf("no msg=ready within %v", ReadyTimeout)
	}
}

// cleanup stops the process, fails the test if anx exited early or not
// with 0, or logged a problem (LogProblems), and logs its stderr if the
// test failed.
func (s *Server) cleanup() {
	s.mu.Lock()
	early := !s.stopped && s.exited()
	s.mu.Unlock()
	if early {
		s.t.Errorf("harness: anx (pid %d) exited during the test: %v", s.PID(), s.state)
	}
	code, err := s.Stop()
	switch {
	case err != nil:
		s.t.Errorf("harness: stop: %v", err)
	case code != 0:
		s.t.Errorf("harness: anx (pid %d) exited %d after its stop signal, want 0 (%v)", s.PID(), code, s.state)
	}
	for _, p := range LogProblems(s.log.String(), s.errors) {
		s.t.Errorf("harness: anx (pid %d): %s", s.PID(), p)
	}
	if s.t.Failed() {
		s.t.Logf("anx stderr (pid %d):\n%s", s.PID(), s.log.String())
	}
}

// exited reports whether the process has exited; s.mu is held.
func (s *Server) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// PID returns the process id of anx.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Stderr returns what anx wrote to stderr so far.
func (s *Server) Stderr() string { return s.log.String() }

// WaitLog waits up to timeout for a stderr line containing substr.
func (s *Server) WaitLog(substr string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(s.log.String(), substr) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// Reload writes config as the server's config file, sends SIGHUP and
// waits up to SafetyNet for the line that ends the reload: "msg=reloaded" or
// `msg="reload failed"`, which it returns. It fails t when neither comes.
func (s *Server) Reload(t testing.TB, config string) string {
	t.Helper()
	if err := os.WriteFile(s.ConfigPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	seen := len(reloadLines(s.log.String()))
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(SafetyNet)
	for time.Now().Before(deadline) {
		if lines := reloadLines(s.log.String()); len(lines) > seen {
			return lines[seen]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("harness: no end of reload logged within %v of SIGHUP; stderr:\n%s", SafetyNet, s.log.String())
	return ""
}

// reloadLines returns the log lines that end a reload, in order.
func reloadLines(log string) []string {
	var lines []string
	for line := range strings.SplitSeq(log, "\n") {
		if strings.Contains(line, "msg=reloaded") || strings.Contains(line, `msg="reload failed"`) {
			lines = append(lines, line)
		}
	}
	return lines
}

// Signal sends sig to the process (by pid) and marks its exit as expected.
func (s *Server) Signal(sig os.Signal) error {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	return s.cmd.Process.Signal(sig)
}

// Wait waits up to timeout for the process to exit and returns its exit
// code (-1 if killed by a signal).
func (s *Server) Wait(timeout time.Duration) (int, error) {
	select {
	case <-s.done:
		return s.state.ExitCode(), nil
	case <-time.After(timeout):
		return 0, fmt.Errorf("harness: anx (pid %d) still running after %v", s.PID(), timeout)
	}
}

// Done is closed when the process has exited.
func (s *Server) Done() <-chan struct{} { return s.done }

// Stop sends SIGTERM, waits StopTimeout, then SIGKILLs; it returns the exit
// code. Calling it again returns the same result.
func (s *Server) Stop() (int, error) {
	if err := s.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return 0, err
	}
	code, err := s.Wait(StopTimeout)
	if err != nil {
		s.kill()
		return -1, err
	}
	return code, nil
}

// kill SIGKILLs the process by pid and waits for it to be reaped.
func (s *Server) kill() {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	_ = s.cmd.Process.Kill()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
	}
}

// CAPath returns the path of anx's internal root certificate.
func (s *Server) CAPath() string { return filepath.Join(s.Data, "ca", "root.pem") }

// CAPool returns a pool with anx's internal root certificate.
func (s *Server) CAPool() *x509.CertPool { return s.pool }

// loadPool reads a PEM root into a new pool.
func loadPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("harness: reading the CA root once ready: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("harness: no certificate in %s", path)
	}
	return pool, nil
}

// URL returns https://localhost:<HTTPSPort><path>.
func (s *Server) URL(path string) string {
	return "https://localhost:" + itoa(s.HTTPSPort) + path
}

// HTTPURL returns http://localhost:<HTTPPort><path>.
func (s *Server) HTTPURL(path string) string {
	return "http://localhost:" + itoa(s.HTTPPort) + path
}

// File returns the bytes of a file of the site root.
func (s *Server) File(name string) []byte {
	s.t.Helper()
	b, err := os.ReadFile(filepath.Join(s.Root, name))
	if err != nil {
		s.t.Fatal(err)
	}
	return b
}

// lineLog collects a process's stderr and signals the ready line.
type lineLog struct {
	mu     sync.Mutex
	b      strings.Builder
	ready  chan struct{} // closed at the first line containing msg=ready
	closed chan struct{} // closed at EOF
	once   sync.Once
}

func newLineLog() *lineLog {
	return &lineLog{ready: make(chan struct{}), closed: make(chan struct{})}
}

// copy reads r line by line until EOF; it is the goroutine that owns the read side.
func (l *lineLog) copy(r io.Reader) {
	defer close(l.closed)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		l.mu.Lock()
		l.b.WriteString(line + "\n")
		l.mu.Unlock()
		if strings.Contains(line, "msg=ready") {
			l.once.Do(func() { close(l.ready) })
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

// String returns everything read so far.
func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func itoa(n int) string { return strconv.Itoa(n) }
