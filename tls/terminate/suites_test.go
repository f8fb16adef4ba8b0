package terminate

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/anx-gateway/anx/asm"
	"github.com/anx-gateway/anx/internal/testpki"
)

// The tests of this file make real handshakes against the tls.Config of
// Config.TLSConfig, with Go's client and with openssl s_client, whose
// ClientHello lists the cipher suites in the order it is given. What they
// check is crypto/tls's server under anx's policy:
//
//   - TLS 1.3 (Go 1.26, handshake_server_tls13.go): the server's order is
//     AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305 if the server has AES-GCM
//     hardware and the first suite of the client's list that crypto/tls
//     knows is an AES-GCM suite (isAESGCMPreferred, cipher_suites.go), and
//     ChaCha20-Poly1305, AES-128-GCM, AES-256-GCM otherwise. The server's
//     order wins: a client listing AES-256-GCM first gets AES-128-GCM.
//   - TLS 1.2 (handshake_server.go, pickCipherSuite): the same choice
//     between crypto/tls's two preference orders, restricted to the suites
//     of Config.CipherSuites; the order of that list is ignored.
//
// A client without AES hardware lists ChaCha20 first, as Chrome and Go's
// own client do, and so gets it. TestCipherPreference runs once on this
// CPU and once more, in a child process, with GODEBUG=cpu.aes=off, so that
// both of the server's orders are seen on a machine with AES hardware.

// testCerts are the server certificates of these tests: an ECDSA and an
// RSA one for localhost and 127.0.0.1 from one test CA.
type testCerts struct {
	ecdsa, rsa tls.Certificate
	roots      *x509.CertPool
	caFile     string // the CA in PEM, for openssl's -CAfile
}

// newTestCerts mints the test certificates and writes the CA's PEM file.
func newTestCerts(t *testing.T) *testCerts {
	t.Helper()
	pki := testpki.New(t, "localhost", "127.0.0.1")
	return &testCerts{ecdsa: *pki.Certificate(), rsa: pki.RSACertificate(t), roots: pki.Pool(), caFile: pki.CAFile(t)}
}

// serveCert starts a Server with anx's policy (Config.TLSConfig) that
// presents cert and answers "ok".
func serveCert(t *testing.T, cert tls.Certificate, roots *x509.CertPool) *testServer {
	t.Helper()
	cfg := Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }}
	ts := start(t, &Server{Default: reply("ok"), TLSConfig: cfg.TLSConfig()}, Config{})
	ts.roots = roots
	return ts
}

// opensslNames are OpenSSL's names of the TLS 1.2 suites used here; TLS
// 1.3 suites have the same names in OpenSSL as in crypto/tls.
var opensslNames = map[uint16]string{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256:       "ECDHE-ECDSA-AES128-GCM-SHA256",
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384:       "ECDHE-ECDSA-AES256-GCM-SHA384",
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: "ECDHE-ECDSA-CHACHA20-POLY1305",
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA:          "ECDHE-ECDSA-AES128-SHA",
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256:         "ECDHE-RSA-AES128-GCM-SHA256",
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384:         "ECDHE-RSA-AES256-GCM-SHA384",
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256:   "ECDHE-RSA-CHACHA20-POLY1305",
}

// opensslName returns OpenSSL's name of the suite id.
func opensslName(id uint16) string {
	if n, ok := opensslNames[id]; ok {
		return n
	}
	return tls.CipherSuiteName(id)
}

// lookOpenSSL returns the path of openssl, or fails the test: make peers
// (e2e/install-peers.sh) installs it.
func lookOpenSSL(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("openssl not in PATH (make peers installs it): %v", err)
	}
	return p
}

// opensslResult is what `openssl s_client -brief` says of a handshake.
type opensslResult struct {
	version string // "TLSv1.3", "TLSv1.2"; "" if no connection was made
	suite   string // OpenSSL's name of the suite
	out     string // everything it printed
}

// opensslHandshake runs `openssl s_client` against addr with
// ServerName localhost, verifying the server against caFile, with the
// extra args, and reports the handshake's outcome. Its stdin is empty,
// so it closes the connection once the handshake is done.
func opensslHandshake(t *testing.T, openssl, addr, caFile string, args ...string) opensslResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangTimeout)
	defer cancel()
	args = append([]string{"s_client", "-connect", addr, "-servername", "localhost",
		"-CAfile", caFile, "-verify_return_error", "-brief"}, args...)
	cmd := exec.CommandContext(ctx, openssl, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) || ctx.Err() != nil {
		t.Fatalf("openssl %q: %v\n%s", args, err, out.String())
	}
	r := opensslResult{out: out.String()}
	if !strings.Contains(r.out, "CONNECTION ESTABLISHED") {
		return r
	}
	for line := range strings.Lines(r.out) {
		if v, ok := strings.CutPrefix(line, "Protocol version: "); ok {
			r.version = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "Ciphersuite: "); ok {
			r.suite = strings.TrimSpace(v)
		}
	}
	return r
}

// noAESChildEnv marks the run of this test binary that TestCipherPreference
// starts with GODEBUG=cpu.aes=off.
const noAESChildEnv = "ANX_TERMINATE_NOAES_CHILD"

// TestCipherPreference checks which suite clients with different orders
// of preference get, on TLS 1.3 and TLS 1.2: a client that lists
// ChaCha20-Poly1305 first (one without AES hardware) gets it; one that
// lists AES-GCM first gets AES-GCM if the server has AES hardware, else
// ChaCha20. See the comment at the top of this file.
func TestCipherPreference(t *testing.T) {
	checkLeaks(t)
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skipf("asm.CPU reports AES-GCM hardware on amd64 and arm64 only, not %s", runtime.GOARCH)
	}
	hasAES := asm.CPU().AESGCM
	// TestCipherPreferenceWithoutAES looks for this line in the child's output.
	t.Logf("AES-GCM hardware: %v", hasAES)
	openssl := lookOpenSSL(t)
	tc := newTestCerts(t)
	ecdsaServer, rsaServer := serveCert(t, tc.ecdsa, tc.roots), serveCert(t, tc.rsa, tc.roots)

	// TLS 1.3 suites, then TLS 1.2 ones: e for ECDHE_ECDSA, r for ECDHE_RSA.
	const (
		aes128  = tls.TLS_AES_128_GCM_SHA256
		aes256  = tls.TLS_AES_256_GCM_SHA384
		chacha  = tls.TLS_CHACHA20_POLY1305_SHA256
		eAES128 = tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
		eAES256 = tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
		eChaCha = tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
		eCBC    = tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA
		rAES128 = tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
		rChaCha = tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
		tls12   = tls.VersionTLS12
		tls13   = tls.VersionTLS13
		rsaCert = true
		ecCert  = false
	)
	tests := []struct {
		name    string
		client  string   // "go" (its order follows this CPU) or "openssl" (offer's order)
		version uint16   // the only version the client offers
		rsa     bool     // against the server with the RSA certificate
		offer   []uint16 // openssl's suites, most preferred first; nil: its defaults
		aes     uint16   // the suite wanted if the server has AES-GCM hardware
		noAES   uint16   // ... and if it has not
	}{
		{"1.3 ChaCha20 first", "openssl", tls13, ecCert, []uint16{chacha, aes128, aes256}, chacha, chacha},
		{"1.3 AES-128-GCM first", "openssl", tls13, ecCert, []uint16{aes128, chacha, aes256}, aes128, chacha},
		// The server's order wins among the AES-GCM suites.
		{"1.3 AES-256-GCM first", "openssl", tls13, ecCert, []uint16{aes256, chacha, aes128}, aes128, chacha},
		{"1.3 AES-256-GCM, ChaCha20", "openssl", tls13, ecCert, []uint16{aes256, chacha}, aes256, chacha},
		{"1.3 AES-GCM only", "openssl", tls13, ecCert, []uint16{aes256, aes128}, aes128, aes128},
		{"1.3 ChaCha20 only", "openssl", tls13, ecCert, []uint16{chacha}, chacha, chacha},
		{"1.3 openssl defaults", "openssl", tls13, ecCert, nil, aes128, chacha},
		{"1.3 Go client", "go", tls13, ecCert, nil, aes128, chacha},
		{"1.2 ChaCha20 first", "openssl", tls12, ecCert, []uint16{eChaCha, eAES128, eAES256}, eChaCha, eChaCha},
		{"1.2 AES-128-GCM first", "openssl", tls12, ecCert, []uint16{eAES128, eChaCha, eAES256}, eAES128, eChaCha},
		{"1.2 AES-256-GCM first", "openssl", tls12, ecCert, []uint16{eAES256, eChaCha, eAES128}, eAES128, eChaCha},
		{"1.2 AES-GCM only", "openssl", tls12, ecCert, []uint16{eAES256, eAES128}, eAES128, eAES128},
		// Only the first suite crypto/tls knows counts, even one the
		// policy refuses: CBC is not AES-GCM, so ChaCha20 comes first.
		{"1.2 CBC, AES-GCM, ChaCha20", "openssl", tls12, ecCert, []uint16{eCBC, eAES128, eChaCha}, eChaCha, eChaCha},
		{"1.2 RSA ChaCha20 first", "openssl", tls12, rsaCert, []uint16{rChaCha, rAES128}, rChaCha, rChaCha},
		{"1.2 RSA AES-GCM first", "openssl", tls12, rsaCert, []uint16{rAES128, rChaCha}, rAES128, rChaCha},
		{"1.2 openssl defaults", "openssl", tls12, ecCert, nil, eAES128, eChaCha},
		{"1.2 Go client", "go", tls12, ecCert, nil, eAES128, eChaCha},
		{"1.2 Go client RSA", "go", tls12, rsaCert, nil, rAES128, rChaCha},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := ecdsaServer
			if tt.rsa {
				ts = rsaServer
			}
			want := tt.noAES
			if hasAES {
				want = tt.aes
			}
			if tt.client == "go" {
				c, err := ts.dial(&tls.Config{MinVersion: tt.version, MaxVersion: tt.version})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				st := c.ConnectionState()
				if st.Version != tt.version || st.CipherSuite != want {
					t.Errorf("got %s %s, want %s %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite),
						tls.VersionName(tt.version), tls.CipherSuiteName(want))
				}
				readClosed(t, c)
				return
			}
			var names []string
			for _, id := range tt.offer {
				names = append(names, opensslName(id))
			}
			args := []string{"-tls1_3"}
			if len(names) > 0 {
				args = append(args, "-ciphersuites", strings.Join(names, ":"))
			}
			wantVersion := "TLSv1.3"
			if tt.version == tls12 {
				args, wantVersion = []string{"-tls1_2"}, "TLSv1.2"
				if len(names) > 0 {
					args = append(args, "-cipher", strings.Join(names, ":"))
				}
			}
			r := opensslHandshake(t, openssl, ts.addr, tc.caFile, args...)
			if r.version != wantVersion || r.suite != opensslName(want) {
				t.Errorf("openssl %q: got %q %q, want %s %s\n%s", args, r.version, r.suite, wantVersion, opensslName(want), r.out)
			}
		})
	}

	if hasAES && os.Getenv(noAESChildEnv) == "" {
		t.Run("GODEBUG=cpu.aes=off", testCipherPreferenceWithoutAES)
	}
}

// testCipherPreferenceWithoutAES runs TestCipherPreference again in a child
// process whose GODEBUG turns the AES instructions off for crypto/tls and
// golang.org/x/sys/cpu (hence asm.CPU), so that the server's order for a
// CPU without AES hardware is checked too. When this binary runs under an
// emulator (go test -exec qemu-aarch64), the kernel starts the child
// through the emulator registered with binfmt_misc.
func testCipherPreferenceWithoutAES(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^TestCipherPreference$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), noAESChildEnv+"=1", "GODEBUG=cpu.aes=off")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if errors.Is(err, syscall.ENOEXEC) {
		t.Fatalf("cannot run this binary again (%v): it is for %s, and no emulator for it is registered with binfmt_misc (make peers registers qemu-aarch64)", err, runtime.GOARCH)
	}
	if err != nil {
		t.Fatalf("child with GODEBUG=cpu.aes=off: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "AES-GCM hardware: false") || !strings.Contains(out.String(), "--- PASS: TestCipherPreference") {
		t.Fatalf("child with GODEBUG=cpu.aes=off did not run the test without AES-GCM hardware:\n%s", out.String())
	}
	for line := range strings.Lines(out.String()) {
		if strings.HasPrefix(line, "GODEBUG: ") {
			t.Errorf("the runtime refused GODEBUG=cpu.aes=off: %s", line)
		}
	}
}

// TestTLS12SuitesAlone offers every TLS 1.2 suite crypto/tls implements,
// secure or not, on its own, to a server whose certificate fits the suite
// (ECDSA or RSA): only ECDHE with an AEAD (AES-GCM, ChaCha20-Poly1305) is
// accepted; CBC, RSA key exchange (no forward secrecy, even with AES-GCM),
// 3DES and RC4 fail the handshake with a handshake_failure alert.
func TestTLS12SuitesAlone(t *testing.T) {
	checkLeaks(t)
	tc := newTestCerts(t)
	ecdsaServer, rsaServer := serveCert(t, tc.ecdsa, tc.roots), serveCert(t, tc.rsa, tc.roots)
	var accepted int
	for _, s := range slices.Concat(tls.CipherSuites(), tls.InsecureCipherSuites()) {
		if !slices.Contains(s.SupportedVersions, tls.VersionTLS12) {
			continue
		}
		t.Run(s.Name, func(t *testing.T) {
			ts := rsaServer
			if strings.Contains(s.Name, "_ECDSA_") {
				ts = ecdsaServer
			}
			forwardSecret := strings.HasPrefix(s.Name, "TLS_ECDHE_")
			aead := strings.Contains(s.Name, "_GCM_") || strings.Contains(s.Name, "_CHACHA20_POLY1305")
			c, err := ts.dial(&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{s.ID}})
			if !forwardSecret || !aead {
				if err == nil {
					c.Close()
					t.Fatal("handshake succeeded, want it refused")
				}
				if !strings.Contains(err.Error(), "handshake failure") {
					t.Errorf("got %v, want the server's handshake_failure alert", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			accepted++
			if st := c.ConnectionState(); st.Version != tls.VersionTLS12 || st.CipherSuite != s.ID || st.CurveID == 0 {
				t.Errorf("got %s %s curve %v, want TLS 1.2 %s with ECDHE",
					tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), st.CurveID, s.Name)
			}
			readClosed(t, c)
		})
	}
	if accepted != 6 {
		t.Errorf("%d suites accepted, want the 6 ECDHE AEAD suites", accepted)
	}
}

// TestVersionsOpenSSL checks the protocol versions with another TLS
// stack than Go's: openssl gets TLS 1.3 by default and TLS 1.2 when it
// turns 1.3 off, and the server refuses TLS 1.1 and 1.0 with a
// protocol_version alert (openssl itself offers them only at security
// level 0). TestVersionsAndSuites does the same with Go's client.
func TestVersionsOpenSSL(t *testing.T) {
	checkLeaks(t)
	openssl := lookOpenSSL(t)
	tc := newTestCerts(t)
	ts := serveCert(t, tc.ecdsa, tc.roots)
	tests := []struct {
		name string
		args []string
		want string // the version negotiated, or "" if the server must refuse
	}{
		{"default", nil, "TLSv1.3"},
		{"TLS 1.3 off", []string{"-no_tls1_3"}, "TLSv1.2"},
		{"TLS 1.1", []string{"-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"}, ""},
		{"TLS 1.0", []string{"-tls1", "-cipher", "DEFAULT@SECLEVEL=0"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := opensslHandshake(t, openssl, ts.addr, tc.caFile, tt.args...)
			if r.version != tt.want {
				t.Errorf("openssl %q: got version %q, want %q\n%s", tt.args, r.version, tt.want, r.out)
			}
			if tt.want == "" && !strings.Contains(r.out, "alert protocol version") {
				t.Errorf("openssl %q: no protocol_version alert from the server\n%s", tt.args, r.out)
			}
		})
	}
}
