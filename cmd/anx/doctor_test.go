package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"os"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/anx-gateway/anx/cmd/anx/internal/config"

	"github.com/anx-gateway/anx/asm"
)

// TestMain lets the test binary stand in for anx when "anx doctor" runs
// itself again (os.Executable) as its hardware-off child.
func TestMain(m *testing.M) {
	if os.Getenv(doctorChildEnv) != "" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestDiagnose measures briefly (10 ms each) and checks what the report
// holds and how it prints; e2e/doctor_test.go checks the speedups of the
// built binary.
func TestDiagnose(t *testing.T) {
	rep := diagnose(config.Default(), 10*time.Millisecond)
	if len(rep.Speeds) != 7 {
		t.Fatalf("%d speeds, want 7: %+v", len(rep.Speeds), rep.Speeds)
	}
	for _, s := range rep.Speeds {
		if s.AsBuilt <= 0 {
			t.Errorf("%s %d B: as built %v MB/s", s.Name, s.Bytes, s.AsBuilt)
		}
	}
	switch runtime.GOARCH {
	case "amd64", "arm64":
		if rep.HardwareOff == "" {
			t.Errorf("no GODEBUG to turn the hardware off on %s", runtime.GOARCH)
		}
		if rep.HardwareOffError != "" {
			t.Fatalf("hardware off: %s (under an emulator, the child starts only if binfmt_misc knows the emulator: make peers registers qemu-aarch64)", rep.HardwareOffError)
		}
		for _, s := range rep.Speeds {
			if s.HardwareOff <= 0 || math.Abs(s.Speedup-s.AsBuilt/s.HardwareOff) > 1e-9 {
				t.Errorf("%s %d B: hardware off %v MB/s, speedup %v", s.Name, s.Bytes, s.HardwareOff, s.Speedup)
			}
		}
		if rep.HardwareOffCPU == nil {
			t.Fatal("no CPU report from the child")
		}
		for _, f := range rep.CPU.Features {
			if f.Present && f.Switch != "" && rep.HardwareOffCPU.Has(f.Name) {
				t.Errorf("the child with GODEBUG=%s still has %s", rep.HardwareOff, f.Name)
			}
		}
	}
	if len(rep.Checks) != 4 {
		t.Errorf("%d checks, want 4: %+v", len(rep.Checks), rep.Checks)
	}
	for _, c := range rep.Checks {
		if c.Status != "ok" && c.Status != "warn" && c.Status != "skip" || c.Detail == "" || (c.Status == "warn") != (c.Fix != "") {
			t.Errorf("check %+v: want ok, warn with a fix, or skip, and a detail", c)
		}
	}

	var text bytes.Buffer
	printDoctor(&text, rep)
	out := text.String()
	for _, want := range []string{"CPU (golang.org/x/sys/cpu)", "AES-GCM on hardware:", "AES-128-GCM 1350 B",
		"AES-256-GCM 16 KiB", "ChaCha20-Poly1305 16 KiB", "SHA-256 16 KiB", "TLS 1.3 suite: " + rep.TLS13.Suite,
		"QUIC UDP buffers", "open files", "GOMAXPROCS", "kernel TLS"} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
	t.Logf("\n%s", out)

	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"cpu", "hardware_off_godebug", "speeds", "tls13", "checks"} {
		if _, ok := m[key]; !ok {
			t.Errorf("JSON lacks %q: %s", key, b)
		}
	}
}

func TestDoctorCommandLine(t *testing.T) {
	if code, _, errOut := runCommand("doctor", "--nope"); code == exitOK || !strings.Contains(errOut, "-json") {
		t.Errorf("unknown flag: exit %d, stderr %q; want a failure and the flags", code, errOut)
	}
	if code, _, errOut := runCommand("doctor", "extra"); code != exitUsage || !strings.Contains(errOut, `"extra"`) {
		t.Errorf("extra argument: exit %d, stderr %q; want %d naming it", code, errOut, exitUsage)
	}
	bad := writeConfig(t, "[[site]]\nhosts = [\"localhost\"]\nroot = \".\"\nbogus = 1\n")
	if code, _, errOut := runCommand("doctor", "--config", bad); code != exitError || !strings.Contains(errOut, "bogus") {
		t.Errorf("bad config: exit %d, stderr %q; want %d naming the key", code, errOut, exitError)
	}
	if code, out, _ := runCommand("help"); code != exitOK || !strings.Contains(out, "anx doctor") {
		t.Errorf("help does not list anx doctor:\n%s", out)
	}
}

func TestChooseSuite(t *testing.T) {
	speeds := []speed{{Name: "AES-128-GCM", Bytes: fullRecord, AsBuilt: 5000}, {Name: "ChaCha20-Poly1305", Bytes: fullRecord, AsBuilt: 2000}}
	tests := []struct {
		name         string
		r            asm.Report
		fips         bool
		suite, else_ string
		reason       string
	}{
		{"amd64 with AES-NI", asm.Report{Arch: "amd64", AESGCM: true}, false,
			"TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256", "AES-NI and PCLMULQDQ (AES-128-GCM 5000 MB/s, ChaCha20-Poly1305 2000 MB/s"},
		{"arm64 without AES", asm.Report{Arch: "arm64"}, false,
			"TLS_CHACHA20_POLY1305_SHA256", "", "lacks AES and PMULL"},
		{"riscv64", asm.Report{Arch: "riscv64"}, false,
			"TLS_CHACHA20_POLY1305_SHA256", "", "no AES-GCM hardware path on riscv64"},
		{"FIPS mode", asm.Report{Arch: "riscv64"}, true,
			"TLS_AES_128_GCM_SHA256", "", "FIPS 140-3"},
	}
	for _, tt := range tests {
		got := chooseSuite(tt.r, speeds, tt.fips)
		if got.Suite != tt.suite || got.Otherwise != tt.else_ || !strings.Contains(got.Reason, tt.reason) {
			t.Errorf("%s: got %+v; want suite %s, otherwise %q, reason with %q", tt.name, got, tt.suite, tt.else_, tt.reason)
		}
	}
}

func TestUDPBufferCheck(t *testing.T) {
	v := func(n int64) sysctlValue { return sysctlValue{n: n} }
	tests := []struct {
		goos       string
		rmem, wmem sysctlValue
		status     string
		detail     string
	}{
		{"linux", v(212992), v(212992), "warn", "416 KiB to receive and 416 KiB to send of the 7 MiB"},
		{"linux", v(7340032), v(7340032), "ok", "give quic-go the 7 MiB"},
		{"linux", v(4194304), v(4194304), "ok", "rmem_max 4194304"}, // granted 8 MiB
		{"linux", v(3670016), v(3670016), "ok", ""},                 // exactly 3.5 MiB: granted 7 MiB
		{"linux", v(3670015), v(8 << 20), "warn", "7167 KiB to receive and 14336 KiB to send"},
		{"linux", sysctlValue{err: fs.ErrNotExist}, v(1), "skip", "cannot read"},
		{"darwin", v(0), v(0), "skip", "darwin"},
	}
	for _, tt := range tests {
		c := udpBufferCheck(tt.goos, ":8443", tt.rmem, tt.wmem)
		if c.Status != tt.status || !strings.Contains(c.Detail, tt.detail) {
			t.Errorf("%s rmem %v wmem %v: %+v; want %s with %q", tt.goos, tt.rmem, tt.wmem, c, tt.status, tt.detail)
		}
		if tt.status == "warn" && c.Fix != "sysctl -w net.core.rmem_max=7500000 net.core.wmem_max=7500000 (and the same in /etc/sysctl.d/ to keep it)" {
			t.Errorf("fix %q", c.Fix)
		}
	}
}

func TestOpenFiles(t *testing.T) {
	const limits = `Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max open files            1024                 524288               files     
Max locked memory         8388608              8388608              bytes     
`
	lim := parseOpenFilesLimit(limits)
	if lim.err != nil || lim.soft != 1024 || lim.hard != 524288 {
		t.Errorf("parse: %+v, want soft 1024, hard 524288", lim)
	}
	if lim := parseOpenFilesLimit("Max open files unlimited unlimited files\n"); lim.hard != math.MaxUint64 {
		t.Errorf("parse unlimited: %+v", lim)
	}
	if lim := parseOpenFilesLimit("Max cpu time 1 2 seconds\n"); lim.err == nil {
		t.Errorf("no open files line: %+v, want an error", lim)
	}
	tests := []struct {
		lim    openFiles
		status string
		detail string
	}{
		{openFiles{soft: 1024, hard: 524288}, "ok", "524288 (the hard limit; Go raises the soft one, 1024, to it) >= 65536"},
		{openFiles{soft: 20000, hard: 20000}, "warn", "20000 (the hard limit; Go raises the soft one, 20000, to it) < 65536"},
		{openFiles{soft: math.MaxUint64, hard: math.MaxUint64}, "ok", "unlimited"},
		{openFiles{err: errors.New("no such file")}, "skip", "no such file"},
	}
	for _, tt := range tests {
		c := openFilesCheck("linux", tt.lim)
		if c.Status != tt.status || !strings.Contains(c.Detail, tt.detail) {
			t.Errorf("%+v: %+v; want %s with %q", tt.lim, c, tt.status, tt.detail)
		}
		if tt.status == "warn" && !strings.Contains(c.Fix, "LimitNOFILE=65536") {
			t.Errorf("fix %q", c.Fix)
		}
	}
	if lim := readOpenFilesLimit(os.DirFS("/")); runtime.GOOS == "linux" && (lim.err != nil || lim.hard == 0) {
		t.Errorf("this process: %+v", lim)
	}
}

func TestGOMAXPROCSCheck(t *testing.T) {
	tests := []struct {
		procs, ncpu int
		env         string
		limit       cpuLimit
		status      string
		detail, fix string
	}{
		{8, 8, "", cpuLimit{}, "ok", "8 for 8 CPUs, no cgroup CPU limit", ""},
		{2, 8, "", cpuLimit{cpus: 1.5}, "ok", "cgroup CPU limit 1.5", ""},
		{2, 8, "", cpuLimit{cpus: 0.5}, "ok", "", ""}, // rounded up to 2
		{3, 8, "", cpuLimit{cpus: 2.5}, "ok", "", ""},
		{8, 8, "8", cpuLimit{cpus: 2}, "warn", "8 (set by GOMAXPROCS=8) for 8 CPUs, cgroup CPU limit 2: 8 loops share 2 CPUs", "unset GOMAXPROCS"},
		{1, 4, "1", cpuLimit{}, "warn", "leaves 3 CPUs idle", "unset GOMAXPROCS"},
		{1, 4, "", cpuLimit{}, "warn", "leaves 3 CPUs idle", "GOMAXPROCS=4"},
		{4, 4, "", cpuLimit{err: errors.New("boom")}, "ok", "unreadable: boom", ""},
	}
	for _, tt := range tests {
		c := gomaxprocsCheck(tt.procs, tt.ncpu, tt.env, tt.limit)
		if c.Status != tt.status || !strings.Contains(c.Detail, tt.detail) || !strings.Contains(c.Fix, tt.fix) {
			t.Errorf("%d procs, %d CPUs, env %q, limit %+v: %+v; want %s with %q, fix %q", tt.procs, tt.ncpu, tt.env, tt.limit, c, tt.status, tt.detail, tt.fix)
		}
	}
}

func TestCgroupCPULimit(t *testing.T) {
	const v2mounts = "30 25 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
	const v1mounts = "40 25 0:34 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:16 - cgroup cgroup rw,cpu,cpuacct\n" +
		"41 25 0:35 / /sys/fs/cgroup/memory rw,nosuid shared:17 - cgroup cgroup rw,memory\n"
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name            string
		cgroups, mounts string
		files           fstest.MapFS
		want            float64
		wantErr         bool
	}{
		{"v2, no limit", "0::/system.slice/anx.service\n", v2mounts, fstest.MapFS{
			"sys/fs/cgroup/system.slice/anx.service/cpu.max": file("max 100000\n"),
		}, 0, false},
		{"v2, limit on the service", "0::/system.slice/anx.service\n", v2mounts, fstest.MapFS{
			"sys/fs/cgroup/system.slice/anx.service/cpu.max": file("150000 100000\n"),
			"sys/fs/cgroup/system.slice/cpu.max":             file("max 100000\n"),
		}, 1.5, false},
		{"v2, smaller limit on the parent", "0::/system.slice/anx.service\n", v2mounts, fstest.MapFS{
			"sys/fs/cgroup/system.slice/anx.service/cpu.max": file("400000 100000\n"),
			"sys/fs/cgroup/system.slice/cpu.max":             file("200000 100000\n"),
		}, 2, false},
		{"v2, malformed", "0::/a\n", v2mounts, fstest.MapFS{"sys/fs/cgroup/a/cpu.max": file("lots\n")}, 0, true},
		{"v1 with cpu controller", "5:memory:/docker/x\n4:cpu,cpuacct:/docker/x\n0::/\n", v1mounts, fstest.MapFS{
			"sys/fs/cgroup/cpu,cpuacct/docker/x/cpu.cfs_quota_us":  file("300000\n"),
			"sys/fs/cgroup/cpu,cpuacct/docker/x/cpu.cfs_period_us": file("100000\n"),
		}, 3, false},
		{"v1, no quota", "4:cpu,cpuacct:/\n", v1mounts, fstest.MapFS{
			"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us":  file("-1\n"),
			"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": file("100000\n"),
		}, 0, false},
		{"v1, mount root is the container's cgroup", "4:cpu,cpuacct:/docker/x\n",
			"40 25 0:34 /docker/x /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu,cpuacct\n", fstest.MapFS{
				"sys/fs/cgroup/cpu/cpu.cfs_quota_us":  file("50000\n"),
				"sys/fs/cgroup/cpu/cpu.cfs_period_us": file("100000\n"),
			}, 0.5, false},
		{"no cgroup mounted", "0::/\n", "", fstest.MapFS{}, 0, false},
	}
	for _, tt := range tests {
		got := cgroupCPULimit(tt.files, tt.cgroups, tt.mounts)
		if got.cpus != tt.want || (got.err != nil) != tt.wantErr {
			t.Errorf("%s: %+v, want %v CPUs, error %v", tt.name, got, tt.want, tt.wantErr)
		}
	}
	if runtime.GOOS == "linux" {
		t.Logf("this process: %+v", readCgroupCPULimit("linux", os.DirFS("/")))
	}
}

func TestKernelTLSCheck(t *testing.T) {
	tests := []struct {
		goos   string
		ulp    fileText
		status string
		detail string
	}{
		{"linux", fileText{s: "mptcp\n"}, "warn", "tcp_available_ulp: mptcp): file bodies go by sendfile on plain HTTP only"},
		{"linux", fileText{s: "espintcp mptcp tls\n"}, "ok", "lists tls"},
		{"linux", fileText{s: "\n"}, "warn", "tcp_available_ulp: nothing"},
		{"linux", fileText{err: fs.ErrNotExist}, "warn", ""},
		{"linux", fileText{err: fs.ErrPermission}, "skip", "cannot read"},
		{"windows", fileText{}, "skip", "windows"},
	}
	for _, tt := range tests {
		c := kernelTLSCheck(tt.goos, tt.ulp)
		if c.Status != tt.status || !strings.Contains(c.Detail, tt.detail) {
			t.Errorf("%s %+v: %+v; want %s with %q", tt.goos, tt.ulp, c, tt.status, tt.detail)
		}
		if tt.status == "warn" && !strings.HasPrefix(c.Fix, "modprobe tls") {
			t.Errorf("fix %q", c.Fix)
		}
	}
}

func TestWrap(t *testing.T) {
	got := wrap("aa bb cc dd", 5)
	if want := []string{"aa bb", "cc dd"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("wrap = %q, want %q", got, want)
	}
	if got := wrap("averylongword x", 4); strings.Join(got, "|") != "averylongword|x" {
		t.Errorf("long word: %q", got)
	}
}
