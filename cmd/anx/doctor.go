package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/fips140"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/anx-gateway/anx/cmd/anx/internal/config"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/anx-gateway/anx/asm"
)

// doctorChildEnv, when set, makes "anx doctor" the child that measures
// the crypto with the hardware paths off: it measures for the duration
// the variable holds (e.g. "200ms") and prints its results as JSON.
const doctorChildEnv = "ANX_DOCTOR_CHILD"

// doctorMeasureTime is how long each crypto measurement runs, in each of
// the two processes: 7 measurements, about 3 s in all.
const doctorMeasureTime = 200 * time.Millisecond

// doctorChildTimeout bounds the child run (under an emulator it is slow).
const doctorChildTimeout = 60 * time.Second

// quicBufferBytes is the UDP socket buffer quic-go asks for in each
// direction (desiredBufferSize in its sys_conn_buffers_nonopenbsd.go),
// and accepts when the kernel reports at least that much.
const quicBufferBytes = 7 << 20

// quicBufferSysctl is the limit the fix sets: the figure quic-go's
// documentation gives, and h3's own warning repeats.
const quicBufferSysctl = 7500000

// wantOpenFiles is the open-files limit a gateway should have. anx sets
// no cap on connections: each holds a descriptor, a proxied one a second
// to its upstream, and 4096 TLS handshakes alone may be in flight (h1's
// MaxHandshakes default). 65536 leaves room for some 32000 proxied
// connections besides the files being served.
const wantOpenFiles = 65536

// doctorReport is what "anx doctor" finds; --json prints it.
type doctorReport struct {
	Version string     `json:"version"`
	OS      string     `json:"os"`
	CPUs    int        `json:"cpus"`
	CPU     asm.Report `json:"cpu"`

	// HardwareOff is the GODEBUG setting of the child that measured
	// with the hardware paths off, HardwareOffCPU that child's CPU
	// report (the features it ran without), and HardwareOffError why
	// there are no such measurements, if there are none.
	HardwareOff      string      `json:"hardware_off_godebug"`
	HardwareOffCPU   *asm.Report `json:"hardware_off_cpu,omitempty"`
	HardwareOffError string      `json:"hardware_off_error,omitempty"`
	Speeds           []speed     `json:"speeds"`

	TLS13  suiteChoice `json:"tls13"`
	Checks []check     `json:"checks"`
}

// speed is one crypto measurement: MB/s (10^6 bytes per second) of the
// process as built, with the hardware paths off, and their ratio.
type speed struct {
	Name        string  `json:"name"`
	Bytes       int     `json:"bytes"`
	AsBuilt     float64 `json:"as_built_mb_s"`
	HardwareOff float64 `json:"hardware_off_mb_s,omitempty"`
	Speedup     float64 `json:"speedup,omitempty"`
}

// suiteChoice is the TLS 1.3 cipher suite anx prefers on this CPU.
type suiteChoice struct {
	Suite string `json:"suite"`
	// Otherwise is the suite for clients whose preference differs
	// (empty when there is no such case).
	Otherwise string `json:"otherwise,omitempty"`
	Reason    string `json:"reason"`
}

// check is one system setting that quietly costs a gateway speed.
type check struct {
	Name   string `json:"name"`
	Status string `json:"status"` // "ok", "warn" or "skip" (not checkable here)
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// doctorChildResult is what the child prints.
type doctorChildResult struct {
	CPU    asm.Report `json:"cpu"`
	Speeds []speed    `json:"speeds"`
}

// runDoctor prints the CPU report, the crypto speeds with and without the
// hardware paths, the TLS 1.3 suite anx prefers and the system checks.
func runDoctor(args []string, stdout, stderr io.Writer) error {
	if each := os.Getenv(doctorChildEnv); each != "" {
		return runDoctorChild(each, stdout)
	}
	flags := flag.NewFlagSet("anx doctor", flag.ContinueOnError)
	flags.SetOutput(stderr)
	configPath := flags.String("config", "", "check against this config `file` (default: the built-in defaults)")
	asJSON := flags.Bool("json", false, "print one JSON object instead of text")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return usageError{fmt.Sprintf("anx doctor takes no arguments, got %q", flags.Arg(0))}
	}
	cfg := config.Default()
	if *configPath != "" {
		var err error
		if cfg, err = config.Load(*configPath); err != nil {
			return err
		}
		if err := cfg.Validate(); err != nil {
			return fmt.Errorf("%s: %w", *configPath, err)
		}
	}
	rep := diagnose(cfg, doctorMeasureTime)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printDoctor(stdout, rep)
	return nil
}

// runDoctorChild is the child's side: measure for each (a duration) and
// print the results.
func runDoctorChild(each string, stdout io.Writer) error {
	d, err := time.ParseDuration(each)
	if err != nil || d <= 0 {
		d = doctorMeasureTime
	}
	return json.NewEncoder(stdout).Encode(doctorChildResult{CPU: asm.CPU(), Speeds: measureCrypto(d)})
}

// diagnose gathers the report: the CPU, the crypto speeds measured here
// and in a child with the hardware paths off, the suite and the checks.
func diagnose(cfg config.Config, each time.Duration) doctorReport {
	rep := doctorReport{
		Version: versionString(),
		OS:      runtime.GOOS,
		CPUs:    runtime.NumCPU(),
		CPU:     asm.CPU(),
		Speeds:  measureCrypto(each),
	}
	rep.HardwareOff = rep.CPU.Off()
	if rep.HardwareOff == "" {
		rep.HardwareOffError = "no hardware path Go can switch off on " + runtime.GOARCH
	} else if child, err := measureHardwareOff(rep.HardwareOff, each); err != nil {
		rep.HardwareOffError = err.Error()
	} else {
		rep.HardwareOffCPU = &child.CPU
		for i := range rep.Speeds {
			s := &rep.Speeds[i]
			if i < len(child.Speeds) && child.Speeds[i].Name == s.Name && child.Speeds[i].Bytes == s.Bytes && child.Speeds[i].AsBuilt > 0 {
				s.HardwareOff = child.Speeds[i].AsBuilt
				s.Speedup = s.AsBuilt / s.HardwareOff
			}
		}
	}
	rep.TLS13 = chooseSuite(rep.CPU, rep.Speeds, fips140.Enabled())
	rep.Checks = systemChecks(cfg)
	return rep
}

// measureHardwareOff runs this binary again as the doctor's child, with
// off added to GODEBUG: the Go runtime and golang.org/x/sys/cpu read it
// at start, so the child's crypto runs without those features.
func measureHardwareOff(off string, each time.Duration) (doctorChildResult, error) {
	exe, err := os.Executable()
	if err != nil {
		return doctorChildResult{}, fmt.Errorf("cannot find this binary to run it again: %w", err)
	}
	godebug := off
	if prev := os.Getenv("GODEBUG"); prev != "" {
		godebug = prev + "," + off // later settings win
	}
	ctx, cancel := context.WithTimeout(context.Background(), doctorChildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "doctor")
	cmd.Env = append(os.Environ(), doctorChildEnv+"="+each.String(), "GODEBUG="+godebug)
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	out, err := cmd.Output()
	if err != nil {
		msg := fmt.Sprintf("running %s again with GODEBUG=%s: %v", exe, off, err)
		if last := lastLine(errOut.String()); last != "" {
			msg += ": " + last
		}
		return doctorChildResult{}, errors.New(msg)
	}
	var res doctorChildResult
	if err := json.Unmarshal(out, &res); err != nil {
		return doctorChildResult{}, fmt.Errorf("reading the output of %s with GODEBUG=%s: %w", exe, off, err)
	}
	return res, nil
}

// lastLine returns the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// workload is one measured operation: setup returns the operation on a
// buffer of size bytes.
type workload struct {
	name  string
	size  int
	setup func(size int) func()
}

// TLS record sizes: one QUIC packet or TCP segment's worth (1350 B), and
// the largest TLS record (16 KiB).
const (
	packetRecord = 1350
	fullRecord   = 16 << 10
)

// workloads are the measurements: sealing TLS records with the AEADs of
// TLS 1.3, and SHA-256, its hash.
func workloads() []workload {
	return []workload{
		{"AES-128-GCM", packetRecord, sealWith(newGCM(16))},
		{"AES-128-GCM", fullRecord, sealWith(newGCM(16))},
		{"AES-256-GCM", packetRecord, sealWith(newGCM(32))},
		{"AES-256-GCM", fullRecord, sealWith(newGCM(32))},
		{"ChaCha20-Poly1305", packetRecord, sealWith(newChaCha20Poly1305)},
		{"ChaCha20-Poly1305", fullRecord, sealWith(newChaCha20Poly1305)},
		{"SHA-256", fullRecord, hashSHA256},
	}
}

// newGCM returns a constructor of AES-GCM with a key of keyLen bytes.
func newGCM(keyLen int) func() (cipher.AEAD, error) {
	return func() (cipher.AEAD, error) {
		block, err := aes.NewCipher(make([]byte, keyLen))
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(block)
	}
}

func newChaCha20Poly1305() (cipher.AEAD, error) {
	return chacha20poly1305.New(make([]byte, chacha20poly1305.KeySize))
}

// sealWith returns the setup of sealing one record of size bytes, with the
// 5-byte additional data of a TLS 1.3 record header. The nonce repeats:
// that is harmless for a measurement and saves the counter.
func sealWith(newAEAD func() (cipher.AEAD, error)) func(int) func() {
	return func(size int) func() {
		aead, err := newAEAD()
		if err != nil {
			panic(err) // constant key sizes: cannot happen
		}
		nonce := make([]byte, aead.NonceSize())
		header := []byte{23, 3, 3, byte((size + aead.Overhead()) >> 8), byte(size + aead.Overhead())}
		record := make([]byte, size)
		out := make([]byte, 0, size+aead.Overhead())
		return func() { out = aead.Seal(out[:0], nonce, record, header) }
	}
}

func hashSHA256(size int) func() {
	data := make([]byte, size)
	return func() { sha256.Sum256(data) }
}

// measureCrypto measures every workload for about each.
func measureCrypto(each time.Duration) []speed {
	var speeds []speed
	for _, w := range workloads() {
		speeds = append(speeds, speed{Name: w.name, Bytes: w.size, AsBuilt: throughput(w.setup(w.size), w.size, each)})
	}
	return speeds
}

// throughput runs op for about d, after a warm-up of a tenth of that
// (caches, branch predictors, the CPU's clock), and returns the rate in
// MB/s: the best of four quarters, so that a moment when the process was
// not running (another process, a virtual machine's neighbour) does not
// count. It reads the clock every 8 runs, which costs nothing next to an
// operation on a TLS record.
func throughput(op func(), size int, d time.Duration) float64 {
	rate := func(d time.Duration) float64 {
		n := 0
		start := time.Now()
		for {
			for range 8 {
				op()
			}
			n += 8
			if elapsed := time.Since(start); elapsed >= d {
				return float64(n) * float64(size) / elapsed.Seconds() / 1e6
			}
		}
	}
	rate(d / 10)
	best := 0.0
	for range 4 {
		best = max(best, rate(d/4))
	}
	return best
}

// chooseSuite says which TLS 1.3 suite crypto/tls (hence anx) picks on
// this CPU, and why (crypto/tls's handshake_server_tls13.go: AES-GCM
// first when the CPU has AES-GCM hardware and the client lists an AES-GCM
// suite first, ChaCha20-Poly1305 first otherwise; FIPS 140-3 mode allows
// AES-GCM only).
func chooseSuite(r asm.Report, speeds []speed, fips bool) suiteChoice {
	aes128 := tls.CipherSuiteName(tls.TLS_AES_128_GCM_SHA256)
	chacha := tls.CipherSuiteName(tls.TLS_CHACHA20_POLY1305_SHA256)
	if fips {
		return suiteChoice{Suite: aes128, Reason: "FIPS 140-3 mode (GODEBUG=fips140=on): crypto/tls offers AES-GCM suites only."}
	}
	rates := fmt.Sprintf("AES-128-GCM %s MB/s, ChaCha20-Poly1305 %s MB/s on 16 KiB records here",
		formatRate(rateOf(speeds, "AES-128-GCM", fullRecord)), formatRate(rateOf(speeds, "ChaCha20-Poly1305", fullRecord)))
	hw := aesHardwareNames(r.Arch)
	if r.AESGCM {
		return suiteChoice{
			Suite:     aes128,
			Otherwise: chacha,
			Reason: fmt.Sprintf("This CPU runs AES-GCM on %s (%s), so crypto/tls prefers AES-GCM for every client "+
				"that lists an AES-GCM suite first, as clients with AES hardware do. A client that lists "+
				"ChaCha20-Poly1305 first (one without AES hardware, such as an older phone) gets %s.", hw, rates, chacha),
		}
	}
	missing := "Go has no AES-GCM hardware path on " + r.Arch
	if hw != "" {
		missing = "This CPU lacks " + hw + " (or GODEBUG turns them off)"
	}
	return suiteChoice{
		Suite: chacha,
		Reason: fmt.Sprintf("%s, so AES-GCM runs in portable Go, slower than ChaCha20-Poly1305 (%s) and open to "+
			"cache-timing attacks. crypto/tls prefers ChaCha20-Poly1305 for every client.", missing, rates),
	}
}

// aesHardwareNames names the features Go's AES-GCM assembly needs on arch.
func aesHardwareNames(arch string) string {
	switch arch {
	case "amd64":
		return "AES-NI and PCLMULQDQ"
	case "arm64":
		return "AES and PMULL"
	}
	return ""
}

// rateOf returns the as-built rate of the named measurement, 0 if absent.
func rateOf(speeds []speed, name string, size int) float64 {
	for _, s := range speeds {
		if s.Name == name && s.Bytes == size {
			return s.AsBuilt
		}
	}
	return 0
}

func formatRate(mbs float64) string {
	if mbs <= 0 {
		return "-"
	}
	return strconv.FormatFloat(mbs, 'f', 0, 64)
}

func formatSize(n int) string {
	if n%1024 == 0 {
		return strconv.Itoa(n>>10) + " KiB"
	}
	return strconv.Itoa(n) + " B"
}

// systemChecks reads the system settings that cost a gateway speed.
func systemChecks(cfg config.Config) []check {
	root := os.DirFS("/")
	return []check{
		udpBufferCheck(runtime.GOOS, cfg.HTTPS, readSysctlInt(root, "net/core/rmem_max"), readSysctlInt(root, "net/core/wmem_max")),
		openFilesCheck(runtime.GOOS, readOpenFilesLimit(root)),
		gomaxprocsCheck(runtime.GOMAXPROCS(0), runtime.NumCPU(), os.Getenv("GOMAXPROCS"), readCgroupCPULimit(runtime.GOOS, root)),
		kernelTLSCheck(runtime.GOOS, readFileString(root, "proc/sys/net/ipv4/tcp_available_ulp")),
	}
}

// sysctlValue is an integer sysctl as read, or why it could not be.
type sysctlValue struct {
	n   int64
	err error
}

func readSysctlInt(root fs.FS, name string) sysctlValue {
	b, err := fs.ReadFile(root, "proc/sys/"+name)
	if err != nil {
		return sysctlValue{err: err}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return sysctlValue{n, err}
}

// fileText is a file's text as read, or why it could not be.
type fileText struct {
	s   string
	err error
}

func readFileString(root fs.FS, name string) fileText {
	b, err := fs.ReadFile(root, name)
	return fileText{string(b), err}
}

// udpBufferCheck compares net.core.rmem_max and wmem_max with the buffers
// quic-go asks for on the HTTP/3 socket. Linux grants a socket twice the
// size it asks for, up to twice these limits, and quic-go is content when
// the size the kernel reports reaches quicBufferBytes; a process with
// CAP_NET_ADMIN gets the size past the limits anyway.
func udpBufferCheck(goos, https string, rmem, wmem sysctlValue) check {
	c := check{Name: "QUIC UDP buffers"}
	if goos != "linux" {
		return skip(c, "not checked on "+goos)
	}
	if rmem.err != nil || wmem.err != nil {
		return skip(c, "cannot read net.core.rmem_max/wmem_max: "+errors.Join(rmem.err, wmem.err).Error())
	}
	granted := func(limit int64) int64 { return 2 * min(limit, quicBufferBytes) }
	where := "HTTP/3 on udp " + https
	if granted(rmem.n) >= quicBufferBytes && granted(wmem.n) >= quicBufferBytes {
		c.Status = "ok"
		c.Detail = fmt.Sprintf("%s: net.core.rmem_max %d, wmem_max %d give quic-go the %d MiB it asks for (Linux grants twice the limit)",
			where, rmem.n, wmem.n, quicBufferBytes>>20)
		return c
	}
	c.Status = "warn"
	c.Detail = fmt.Sprintf("%s: net.core.rmem_max %d, wmem_max %d give a socket %d KiB to receive and %d KiB to send "+
		"of the %d MiB quic-go asks for (unless anx runs with CAP_NET_ADMIN): HTTP/3 throughput suffers",
		where, rmem.n, wmem.n, granted(rmem.n)>>10, granted(wmem.n)>>10, quicBufferBytes>>20)
	c.Fix = fmt.Sprintf("sysctl -w net.core.rmem_max=%d net.core.wmem_max=%d (and the same in /etc/sysctl.d/ to keep it)",
		quicBufferSysctl, quicBufferSysctl)
	return c
}

// openFiles is the RLIMIT_NOFILE of this process as read.
type openFiles struct {
	soft, hard uint64
	err        error
}

// readOpenFilesLimit reads "Max open files" of /proc/self/limits, which
// holds what getrlimit(RLIMIT_NOFILE) returns, without a system call
// that not every system anx builds for has.
func readOpenFilesLimit(root fs.FS) openFiles {
	b, err := fs.ReadFile(root, "proc/self/limits")
	if err != nil {
		return openFiles{err: err}
	}
	return parseOpenFilesLimit(string(b))
}

// parseOpenFilesLimit parses the text of /proc/self/limits.
func parseOpenFilesLimit(text string) openFiles {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "Max open files")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 2 {
			break
		}
		soft, err1 := parseLimit(f[0])
		hard, err2 := parseLimit(f[1])
		if err := errors.Join(err1, err2); err != nil {
			return openFiles{err: fmt.Errorf("/proc/self/limits: %w", err)}
		}
		return openFiles{soft: soft, hard: hard}
	}
	return openFiles{err: errors.New("/proc/self/limits: no \"Max open files\" line")}
}

func parseLimit(s string) (uint64, error) {
	if s == "unlimited" {
		return math.MaxUint64, nil
	}
	return strconv.ParseUint(s, 10, 64)
}

// openFilesCheck compares the open-files limit with wantOpenFiles. Go
// raises the soft limit to the hard one when a program starts (since Go
// 1.19), so the hard limit is what anx gets.
func openFilesCheck(goos string, lim openFiles) check {
	c := check{Name: "open files"}
	if goos != "linux" {
		return skip(c, "not checked on "+goos)
	}
	if lim.err != nil {
		return skip(c, lim.err.Error())
	}
	what := fmt.Sprintf("%s (the hard limit; Go raises the soft one, %s, to it)", formatLimit(lim.hard), formatLimit(lim.soft))
	if lim.hard >= wantOpenFiles {
		c.Status = "ok"
		c.Detail = fmt.Sprintf("%s >= %d", what, wantOpenFiles)
		return c
	}
	c.Status = "warn"
	c.Detail = fmt.Sprintf("%s < %d: anx caps no connections, each takes a descriptor (a proxied one two), "+
		"and past the limit accepts fail", what, wantOpenFiles)
	c.Fix = fmt.Sprintf("LimitNOFILE=%d in anx's systemd unit, or ulimit -Hn %d; ulimit -n %d (as root) in the shell that starts it",
		wantOpenFiles, wantOpenFiles, wantOpenFiles)
	return c
}

func formatLimit(n uint64) string {
	if n == math.MaxUint64 {
		return "unlimited"
	}
	return strconv.FormatUint(n, 10)
}

// cpuLimit is the cgroup CPU limit (quota / period, in CPUs) as read: 0
// when there is none.
type cpuLimit struct {
	cpus float64
	err  error
}

// gomaxprocsCheck compares GOMAXPROCS with the CPUs anx may use: the
// CPUs of its affinity mask, or fewer under a cgroup CPU limit, which Go
// (1.25+) follows by default, rounding it up and to at least 2.
func gomaxprocsCheck(procs, ncpu int, env string, limit cpuLimit) check {
	c := check{Name: "GOMAXPROCS"}
	want, of := ncpu, fmt.Sprintf("%d CPUs", ncpu)
	switch {
	case limit.err != nil:
		of += " (cgroup CPU limit unreadable: " + limit.err.Error() + ")"
	case limit.cpus > 0:
		cg := max(2, int(math.Ceil(limit.cpus)))
		of += fmt.Sprintf(", cgroup CPU limit %s", strconv.FormatFloat(limit.cpus, 'f', -1, 64))
		want = min(want, cg)
	default:
		of += ", no cgroup CPU limit"
	}
	set := ""
	if env != "" {
		set = " (set by GOMAXPROCS=" + env + ")"
	}
	switch {
	case procs == want:
		c.Status = "ok"
		c.Detail = fmt.Sprintf("%d%s for %s: one epoll loop per CPU", procs, set, of)
	case procs > want:
		c.Status = "warn"
		c.Detail = fmt.Sprintf("%d%s for %s: %d loops share %d CPUs' time and get throttled", procs, set, of, procs, want)
	default:
		c.Status = "warn"
		c.Detail = fmt.Sprintf("%d%s for %s: anx runs one epoll loop per GOMAXPROCS and leaves %d CPUs idle", procs, set, of, want-procs)
	}
	if c.Status == "warn" {
		c.Fix = fmt.Sprintf("GOMAXPROCS=%d in anx's environment", want)
		if env != "" {
			c.Fix = "unset GOMAXPROCS in anx's environment: Go then follows the CPUs and the cgroup limit"
		}
	}
	return c
}

// readCgroupCPULimit reads the CPU limit of this process's cgroup and its
// ancestors (the smallest), cgroup v2 or v1, as the Go runtime does.
func readCgroupCPULimit(goos string, root fs.FS) cpuLimit {
	if goos != "linux" {
		return cpuLimit{}
	}
	cg, err := fs.ReadFile(root, "proc/self/cgroup")
	if err != nil {
		return cpuLimit{err: err}
	}
	mounts, err := fs.ReadFile(root, "proc/self/mountinfo")
	if err != nil {
		return cpuLimit{err: err}
	}
	return cgroupCPULimit(root, string(cg), string(mounts))
}

// cgroupCPULimit finds this process's CPU cgroup directory from the text
// of /proc/self/cgroup and /proc/self/mountinfo (v1's cpu controller if
// mounted, else v2) and returns the smallest limit from it up to the
// mount's root.
func cgroupCPULimit(root fs.FS, cgroups, mountinfo string) cpuLimit {
	var v1, v2 string
	hasV1, hasV2 := false, false
	for line := range strings.Lines(cgroups) {
		f := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(f) != 3 {
			continue
		}
		switch {
		case f[0] == "0" && f[1] == "":
			v2, hasV2 = f[2], true
		case containsField(f[1], "cpu"):
			v1, hasV1 = f[2], true
		}
	}
	for line := range strings.Lines(mountinfo) {
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		pre, post, ok := strings.Cut(strings.TrimSpace(line), " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 {
			continue
		}
		mountRoot, mountPoint := f[3], f[4]
		switch {
		case hasV1 && g[0] == "cgroup" && containsField(g[2], "cpu"):
			return walkCgroup(root, cgroupDir(mountRoot, mountPoint, v1), mountPoint, readV1Limit)
		case !hasV1 && hasV2 && g[0] == "cgroup2":
			return walkCgroup(root, cgroupDir(mountRoot, mountPoint, v2), mountPoint, readV2Limit)
		}
	}
	return cpuLimit{}
}

// containsField reports whether the comma-separated list has name.
func containsField(list, name string) bool {
	for f := range strings.SplitSeq(list, ",") {
		if f == name {
			return true
		}
	}
	return false
}

// cgroupDir is the directory of cgroup path under a cgroup mount whose
// root is mountRoot.
func cgroupDir(mountRoot, mountPoint, cgPath string) string {
	rel := cgPath
	if mountRoot != "/" {
		if r, ok := strings.CutPrefix(cgPath, mountRoot); ok {
			rel = r
		} else {
			rel = "/"
		}
	}
	return path.Join(mountPoint, rel)
}

// walkCgroup returns the smallest limit read from dir and its parents up
// to top.
func walkCgroup(root fs.FS, dir, top string, read func(fs.FS, string) (float64, error)) cpuLimit {
	best := 0.0
	for {
		cpus, err := read(root, strings.TrimPrefix(dir, "/"))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return cpuLimit{err: err}
		}
		if cpus > 0 && (best == 0 || cpus < best) {
			best = cpus
		}
		if dir == top || dir == "/" || !strings.HasPrefix(dir, top) {
			return cpuLimit{cpus: best}
		}
		dir = path.Dir(dir)
	}
}

// readV2Limit reads cgroup v2's cpu.max: "max 100000" or "QUOTA PERIOD".
func readV2Limit(root fs.FS, dir string) (float64, error) {
	b, err := fs.ReadFile(root, path.Join(dir, "cpu.max"))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, fmt.Errorf("%s/cpu.max: malformed %q", dir, b)
	}
	if f[0] == "max" {
		return 0, nil
	}
	return quotaPerPeriod(f[0], f[1])
}

// readV1Limit reads cgroup v1's cpu.cfs_quota_us (-1: none) and
// cpu.cfs_period_us.
func readV1Limit(root fs.FS, dir string) (float64, error) {
	q, err := fs.ReadFile(root, path.Join(dir, "cpu.cfs_quota_us"))
	if err != nil {
		return 0, err
	}
	p, err := fs.ReadFile(root, path.Join(dir, "cpu.cfs_period_us"))
	if err != nil {
		return 0, err
	}
	if strings.TrimSpace(string(q)) == "-1" {
		return 0, nil
	}
	return quotaPerPeriod(strings.TrimSpace(string(q)), strings.TrimSpace(string(p)))
}

func quotaPerPeriod(quota, period string) (float64, error) {
	q, err1 := strconv.ParseInt(quota, 10, 64)
	p, err2 := strconv.ParseInt(period, 10, 64)
	if err := errors.Join(err1, err2); err != nil || q <= 0 || p <= 0 {
		return 0, fmt.Errorf("cgroup CPU quota %q / period %q: not positive integers", quota, period)
	}
	return float64(q) / float64(p), nil
}

// kernelTLSCheck reports whether the kernel offers TLS offload (the "tls"
// upper-layer protocol), without which file bodies go by sendfile on
// plain HTTP only.
func kernelTLSCheck(goos string, ulp fileText) check {
	c := check{Name: "kernel TLS"}
	if goos != "linux" {
		return skip(c, "kernel TLS is Linux's; not checked on "+goos)
	}
	if ulp.err != nil && !errors.Is(ulp.err, fs.ErrNotExist) {
		return skip(c, "cannot read net.ipv4.tcp_available_ulp: "+ulp.err.Error())
	}
	list := strings.Fields(ulp.s)
	for _, p := range list {
		if p == "tls" {
			c.Status = "ok"
			c.Detail = "available: net.ipv4.tcp_available_ulp lists tls"
			return c
		}
	}
	have := "nothing"
	if len(list) > 0 {
		have = strings.Join(list, " ")
	}
	c.Status = "warn"
	c.Detail = fmt.Sprintf("not available (net.ipv4.tcp_available_ulp: %s): file bodies go by sendfile on plain HTTP only; "+
		"over TLS they are read and encrypted in user space", have)
	c.Fix = "modprobe tls (and tls in /etc/modules-load.d/ to keep it)"
	return c
}

func skip(c check, why string) check {
	c.Status, c.Detail = "skip", why
	return c
}

// printDoctor writes the report as text.
func printDoctor(w io.Writer, r doctorReport) {
	fmt.Fprintf(w, "%s, %s/%s, %d CPUs\n\n", r.Version, r.OS, r.CPU.Arch, r.CPUs)

	fmt.Fprintln(w, "CPU (golang.org/x/sys/cpu)")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(r.CPU.Features) == 0 {
		fmt.Fprintf(tw, "  no features reported on %s\n", r.CPU.Arch)
	}
	for _, f := range r.CPU.Features {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", f.Name, yesNo(f.Present), f.Why)
	}
	tw.Flush()
	fmt.Fprintf(w, "  AES-GCM on hardware: %s\n", onHardware(r.CPU.AESGCM, aesHardwareNames(r.CPU.Arch)))
	fmt.Fprintf(w, "  SHA-256 on hardware: %s\n\n", onHardware(r.CPU.SHA256, shaHardwareName(r.CPU.Arch)))

	if r.HardwareOffError == "" {
		fmt.Fprintf(w, "Crypto speed, MB/s: as built, and with GODEBUG=%s\n", r.HardwareOff)
	} else {
		fmt.Fprintf(w, "Crypto speed, MB/s (hardware off not measured: %s)\n", r.HardwareOffError)
	}
	const row = "  %-26s %10s %14s %9s\n"
	fmt.Fprintf(w, row, "", "AS BUILT", "HARDWARE OFF", "SPEEDUP")
	for _, s := range r.Speeds {
		speedup := "-"
		if s.Speedup > 0 {
			speedup = strconv.FormatFloat(s.Speedup, 'f', 1, 64) + "x"
		}
		fmt.Fprintf(w, row, s.Name+" "+formatSize(s.Bytes), formatRate(s.AsBuilt), formatRate(s.HardwareOff), speedup)
	}
	fmt.Fprintln(w)

	fmt.Fprintf(w, "TLS 1.3 suite: %s\n", r.TLS13.Suite)
	for _, line := range wrap(r.TLS13.Reason, 96) {
		fmt.Fprintf(w, "  %s\n", line)
	}
	fmt.Fprintln(w)

	fmt.Fprintln(w, "System")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range r.Checks {
		line := c.Detail
		if c.Fix != "" {
			line += "; fix: " + c.Fix
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.Status, c.Name, line)
	}
	tw.Flush()
}

// shaHardwareName names the feature crypto/sha256's hardware path needs.
func shaHardwareName(arch string) string {
	switch arch {
	case "amd64":
		return "SHA-NI"
	case "arm64":
		return "SHA2"
	}
	return ""
}

// onHardware says yes or no, naming the features the answer rests on.
func onHardware(yes bool, features string) string {
	if features == "" {
		return yesNo(yes)
	}
	if yes {
		return "yes (" + features + ")"
	}
	return "no (needs " + features + ")"
}

// wrap breaks text into lines of at most width bytes, between words.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		if line != "" && len(line)+1+len(word) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
