package certs

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// newCSR returns a parsed CSR for tmpl, signed by a new P-256 key, and
// that key.
func newCSR(t *testing.T, tmpl *x509.CertificateRequest) (*x509.CertificateRequest, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := newKey()
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatalf("CreateCertificateRequest: %v", err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatalf("ParseCertificateRequest: %v", err)
	}
	return csr, key
}

// parseChain decodes the PEM chain Issue returns: leaf, then intermediate.
func parseChain(t *testing.T, chainPEM []byte) []*x509.Certificate {
	t.Helper()
	var chain []*x509.Certificate
	for rest := chainPEM; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			if len(strings.TrimSpace(string(rest))) != 0 {
				t.Fatalf("chain has trailing bytes %q", rest)
			}
			break
		}
		if block.Type != "CERTIFICATE" {
			t.Fatalf("chain holds a %q block, want only CERTIFICATE", block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, cert)
	}
	return chain
}

// issueCSR has ca issue a certificate for csr and returns the parsed chain.
func issueCSR(t *testing.T, ca *CA, csr *x509.CertificateRequest) ([]*x509.Certificate, error) {
	t.Helper()
	ic, err := ca.Issue(context.Background(), csr)
	if err != nil {
		return nil, err
	}
	return parseChain(t, ic.Certificate), nil
}

// issueLeaf has ca issue a leaf for names (DNS names in the CSR) and
// returns it with its key.
func issueLeaf(t *testing.T, ca *CA, names ...string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	csr, key := newCSR(t, &x509.CertificateRequest{DNSNames: names})
	chain, err := issueCSR(t, ca, csr)
	if err != nil {
		t.Fatalf("Issue(%q): %v", names, err)
	}
	return chain[0], key
}

// verify checks a chain (leaf, intermediate) against ca's root for name, as a
// client would at the time the leaf was issued.
func verify(t *testing.T, ca *CA, chain []*x509.Certificate, name string) error {
	t.Helper()
	if len(chain) != 2 {
		t.Fatalf("chain has %d certificates, want 2 (leaf + intermediate)", len(chain))
	}
	leaf := chain[0]
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(ca.Root())
	inters.AddCert(chain[1])
	_, err := leaf.Verify(x509.VerifyOptions{
		DNSName:       name,
		Roots:         roots,
		Intermediates: inters,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		CurrentTime:   leaf.NotBefore.Add(backdate),
	})
	return err
}

// ipStrings returns the IP addresses of a certificate as strings.
func ipStrings(ips []net.IP) []string {
	var s []string
	for _, ip := range ips {
		s = append(s, ip.String())
	}
	return s
}

func TestIssuerKey(t *testing.T) {
	ca, _ := openTestCA(t)
	if InternalIssuerKey != "anx-internal" {
		t.Errorf("InternalIssuerKey got %q, want %q: stored certificates would be orphaned", InternalIssuerKey, "anx-internal")
	}
	if got := ca.IssuerKey(); got != InternalIssuerKey {
		t.Errorf("IssuerKey got %q, want %q", got, "anx-internal")
	}
}

func TestIssue(t *testing.T) {
	ca, _ := openTestCA(t)
	tests := []struct {
		name    string
		csr     x509.CertificateRequest
		wantDNS []string
		wantIP  []string
		wantCN  string
		verify  []string // names a client checks; each must verify
	}{
		{"localhost", x509.CertificateRequest{DNSNames: []string{"localhost"}},
			[]string{"localhost"}, nil, "localhost", []string{"localhost"}},
		{"case and trailing dot", x509.CertificateRequest{DNSNames: []string{"Api.Internal."}},
			[]string{"api.internal"}, nil, "api.internal", []string{"api.internal", "API.internal"}},
		{"underscore", x509.CertificateRequest{DNSNames: []string{"under_score.internal"}},
			[]string{"under_score.internal"}, nil, "under_score.internal", []string{"under_score.internal"}},
		{"several names", x509.CertificateRequest{DNSNames: []string{"a.test", "B.test"}},
			[]string{"a.test", "b.test"}, nil, "a.test", []string{"a.test", "b.test"}},
		{"IPv4 as DNS name", x509.CertificateRequest{DNSNames: []string{"127.0.0.1"}},
			nil, []string{"127.0.0.1"}, "127.0.0.1", []string{"127.0.0.1"}},
		{"IPv6 as DNS name", x509.CertificateRequest{DNSNames: []string{"::1"}},
			nil, []string{"::1"}, "::1", []string{"::1"}},
		{"mapped IPv4 as DNS name", x509.CertificateRequest{DNSNames: []string{"::FFFF:10.0.0.1"}},
			nil, []string{"10.0.0.1"}, "10.0.0.1", []string{"10.0.0.1"}},
		{"IPv4 SAN", x509.CertificateRequest{IPAddresses: []net.IP{net.ParseIP("192.0.2.7")}},
			nil, []string{"192.0.2.7"}, "192.0.2.7", []string{"192.0.2.7"}},
		{"IPv6 SAN", x509.CertificateRequest{IPAddresses: []net.IP{net.ParseIP("2001:db8::1")}},
			nil, []string{"2001:db8::1"}, "2001:db8::1", []string{"2001:db8::1"}},
		{"mapped IPv4 SAN", x509.CertificateRequest{IPAddresses: []net.IP{net.ParseIP("::ffff:10.0.0.2")}},
			nil, []string{"10.0.0.2"}, "10.0.0.2", []string{"10.0.0.2"}},
		{"DNS name and IP", x509.CertificateRequest{DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}},
			[]string{"localhost"}, []string{"127.0.0.1"}, "localhost", []string{"localhost", "127.0.0.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			csr, key := newCSR(t, &tt.csr)
			chain, err := issueCSR(t, ca, csr)
			if err != nil {
				t.Fatalf("Issue: %v", err)
			}
			leaf := chain[0]
			if !slices.Equal(leaf.DNSNames, tt.wantDNS) {
				t.Errorf("DNS SANs got %q, want %q", leaf.DNSNames, tt.wantDNS)
			}
			if got := ipStrings(leaf.IPAddresses); !slices.Equal(got, tt.wantIP) {
				t.Errorf("IP SANs got %q, want %q", got, tt.wantIP)
			}
			if leaf.Subject.CommonName != tt.wantCN {
				t.Errorf("CommonName got %q, want %q", leaf.Subject.CommonName, tt.wantCN)
			}
			for _, name := range tt.verify {
				if err := verify(t, ca, chain, name); err != nil {
					t.Errorf("Verify(%q): %v", name, err)
				}
			}
			if !chain[1].Equal(ca.inter) {
				t.Error("chain[1] is not the CA's intermediate")
			}
			if pub, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(key.Public()) {
				t.Errorf("leaf key got %T, want the CSR's key", leaf.PublicKey)
			}
			if len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth || leaf.IsCA {
				t.Errorf("ExtKeyUsage got %v IsCA %v, want [ServerAuth] false", leaf.ExtKeyUsage, leaf.IsCA)
			}
			if leaf.KeyUsage != x509.KeyUsageDigitalSignature {
				t.Errorf("KeyUsage got %v, want DigitalSignature", leaf.KeyUsage)
			}
			if got := leaf.NotAfter.Sub(leaf.NotBefore); got != LeafLifetime+backdate {
				t.Errorf("lifetime got %v, want %v", got, LeafLifetime+backdate)
			}
			if d := time.Since(leaf.NotBefore.Add(backdate)); d < 0 || d > time.Minute {
				t.Errorf("NotBefore got %v, want about an hour ago", leaf.NotBefore)
			}
		})
	}
}

func TestIssueSerialsDiffer(t *testing.T) {
	ca, _ := openTestCA(t)
	a, _ := issueLeaf(t, ca, "same.test")
	b, _ := issueLeaf(t, ca, "same.test")
	if a.SerialNumber.Cmp(b.SerialNumber) == 0 {
		t.Errorf("two leaves share the serial %v", a.SerialNumber)
	}
}

func TestIssueWrongName(t *testing.T) {
	ca, _ := openTestCA(t)
	csr, _ := newCSR(t, &x509.CertificateRequest{DNSNames: []string{"a.internal"}})
	chain, err := issueCSR(t, ca, csr)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"b.internal", "x.a.internal", "internal"} {
		if err := verify(t, ca, chain, name); err == nil {
			t.Errorf("certificate for a.internal verified for %q", name)
		}
	}
}

// TestIssueOtherRoot checks that a leaf does not verify against another CA's
// root.
func TestIssueOtherRoot(t *testing.T) {
	ca, _ := openTestCA(t)
	other, _ := openTestCA(t)
	csr, _ := newCSR(t, &x509.CertificateRequest{DNSNames: []string{"a.internal"}})
	chain, err := issueCSR(t, ca, csr)
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(t, other, chain, "a.internal"); err == nil {
		t.Error("leaf verified against another CA's root")
	}
}

func TestIssueRefuses(t *testing.T) {
	ca, _ := openTestCA(t)
	long := "a"
	for len(long) < 254 {
		long += ".a"
	}
	spiffe, _ := url.Parse("spiffe://example.org/svc")
	tests := []struct {
		name string
		csr  x509.CertificateRequest
		want string // in the error
	}{
		{"e-mail", x509.CertificateRequest{DNSNames: []string{"a.test"}, EmailAddresses: []string{"a@b.test"}}, "only DNS names and IP addresses"},
		{"URI", x509.CertificateRequest{DNSNames: []string{"a.test"}, URIs: []*url.URL{spiffe}}, "only DNS names and IP addresses"},
		{"empty", x509.CertificateRequest{}, "names nothing"},
		{"CN only", x509.CertificateRequest{Subject: pkix.Name{CommonName: "a.test"}}, "names nothing"},
		{"wildcard", x509.CertificateRequest{DNSNames: []string{"*.example.com"}}, "invalid name"},
		{"any", x509.CertificateRequest{DNSNames: []string{"*"}}, "invalid name"},
		{"empty label", x509.CertificateRequest{DNSNames: []string{"a..b"}}, "invalid name"},
		{"dot", x509.CertificateRequest{DNSNames: []string{"."}}, "invalid name"},
		{"leading hyphen", x509.CertificateRequest{DNSNames: []string{"-a.example"}}, "invalid name"},
		{"trailing hyphen", x509.CertificateRequest{DNSNames: []string{"a-.example"}}, "invalid name"},
		{"space", x509.CertificateRequest{DNSNames: []string{"exa mple"}}, "invalid name"},
		{"slash", x509.CertificateRequest{DNSNames: []string{"a.b/c"}}, "invalid name"},
		{"zone", x509.CertificateRequest{DNSNames: []string{"fe80::1%eth0"}}, "invalid name"},
		{"too long", x509.CertificateRequest{DNSNames: []string{long}}, "invalid name"},
		{"label too long", x509.CertificateRequest{DNSNames: []string{strings.Repeat("a", 64) + ".example"}}, "invalid name"},
		{"one bad among good", x509.CertificateRequest{DNSNames: []string{"good.test", "bad..test"}}, "invalid name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			csr, _ := newCSR(t, &tt.csr)
			chain, err := issueCSR(t, ca, csr)
			if err == nil {
				t.Fatalf("Issue got a certificate for %q %v, want an error containing %q", chain[0].DNSNames, chain[0].IPAddresses, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "certs: ") {
				t.Errorf("Issue error got %q, want one starting \"certs: \" containing %q", err, tt.want)
			}
		})
	}
}

// TestIssueBadSignature checks that a CSR whose signature does not match
// its content or its key is refused.
func TestIssueBadSignature(t *testing.T) {
	ca, _ := openTestCA(t)
	other, err := newKey()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		tamper func(csr *x509.CertificateRequest)
	}{
		{"flipped signature bit", func(csr *x509.CertificateRequest) {
			csr.Signature = slices.Clone(csr.Signature)
			csr.Signature[len(csr.Signature)/2] ^= 1
		}},
		{"other public key", func(csr *x509.CertificateRequest) { csr.PublicKey = other.Public() }},
		{"names changed after signing", func(csr *x509.CertificateRequest) {
			// The names Issue reads come from the parsed fields, the
			// signature covers the raw TBS: swap in another CSR's TBS.
			evil, _ := newCSR(t, &x509.CertificateRequest{DNSNames: []string{"evil.test"}})
			csr.RawTBSCertificateRequest = evil.RawTBSCertificateRequest
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			csr, _ := newCSR(t, &x509.CertificateRequest{DNSNames: []string{"a.test"}})
			tt.tamper(csr)
			_, err := ca.Issue(context.Background(), csr)
			if err == nil || !strings.Contains(err.Error(), "CSR signature") {
				t.Errorf("Issue error got %v, want a CSR signature error", err)
			}
		})
	}
}

// TestIssueCommonNameFromSANs checks that the leaf's CommonName is one of
// its SANs, never a CSR's CommonName that Issue did not check: a CSR for
// an IP address must not get a certificate whose subject names
// "bank.example" (CA/B BR 7.1.4.3: a CN, if present, repeats a SAN).
func TestIssueCommonNameFromSANs(t *testing.T) {
	ca, _ := openTestCA(t)
	tests := []struct {
		name string
		csr  x509.CertificateRequest
		want []string // acceptable CommonNames
	}{
		{"IP SAN, foreign CN", x509.CertificateRequest{
			Subject:     pkix.Name{CommonName: "bank.example"},
			IPAddresses: []net.IP{net.ParseIP("10.0.0.1")},
		}, []string{"", "10.0.0.1"}},
		{"IP SAN, invalid CN", x509.CertificateRequest{
			Subject:     pkix.Name{CommonName: "not a name"},
			IPAddresses: []net.IP{net.ParseIP("10.0.0.1")},
		}, []string{"", "10.0.0.1"}},
		{"DNS SAN, foreign CN", x509.CertificateRequest{
			Subject:  pkix.Name{CommonName: "bank.example"},
			DNSNames: []string{"a.internal"},
		}, []string{"", "a.internal"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			csr, _ := newCSR(t, &tt.csr)
			chain, err := issueCSR(t, ca, csr)
			if err != nil {
				t.Fatal(err)
			}
			if got := chain[0].Subject.CommonName; !slices.Contains(tt.want, got) {
				t.Errorf("CommonName got %q, want one of %q", got, tt.want)
			}
		})
	}
}

// TestIssueLongNameNoCommonName checks that a name longer than X.509's 64
// bytes of CommonName is issued with no CommonName, only the SAN.
func TestIssueLongNameNoCommonName(t *testing.T) {
	ca, _ := openTestCA(t)
	name := strings.Repeat("a", 60) + "." + strings.Repeat("b", 10) + ".internal"
	csr, _ := newCSR(t, &x509.CertificateRequest{DNSNames: []string{name}})
	chain, err := issueCSR(t, ca, csr)
	if err != nil {
		t.Fatal(err)
	}
	if cn := chain[0].Subject.CommonName; cn != "" {
		t.Errorf("CommonName got %q, want none", cn)
	}
	if err := verify(t, ca, chain, name); err != nil {
		t.Error(err)
	}
}

// TestIssueRenewsIntermediate issues a leaf when the intermediate is due
// and checks that a new one is made, written and used.
func TestIssueRenewsIntermediate(t *testing.T) {
	clock := &fakeClock{time.Now()}
	ca, err := openCA(t.TempDir(), clock.now)
	if err != nil {
		t.Fatal(err)
	}
	old := ca.inter
	clock.t = old.NotAfter.Add(-IntermediateRenewBefore + time.Hour)
	csr, _ := newCSR(t, &x509.CertificateRequest{DNSNames: []string{"late.test"}})
	chain, err := issueCSR(t, ca, csr)
	if err != nil {
		t.Fatal(err)
	}
	if ca.inter.Equal(old) {
		t.Fatal("intermediate not renewed")
	}
	onDisk, err := readCert(ca.path(interCertFile))
	if err != nil || !onDisk.Equal(ca.inter) {
		t.Errorf("intermediate.pem does not hold the new intermediate (err %v)", err)
	}
	if !chain[1].Equal(ca.inter) {
		t.Error("chain carries the old intermediate")
	}
	if err := chain[0].CheckSignatureFrom(ca.inter); err != nil {
		t.Errorf("leaf not signed by the new intermediate: %v", err)
	}
	if got, want := chain[0].NotAfter, clock.t.Add(LeafLifetime); !got.Equal(want) {
		t.Errorf("leaf NotAfter got %v, want %v (not clamped by the new intermediate)", got, want)
	}
	// Not due: issuing again keeps the new intermediate.
	renewed := ca.inter
	if _, err := issueCSR(t, ca, csr); err != nil {
		t.Fatal(err)
	}
	if !ca.inter.Equal(renewed) {
		t.Error("intermediate renewed again although not due")
	}
}

// TestIssueRenewalFailure makes the intermediate's renewal fail (its
// directory is gone) and checks that the old one keeps signing while
// valid, with leaves clamped to its expiry; that issuance fails once it
// has expired; that renewal is not retried before interRetry; and that
// it succeeds once the directory is back.
func TestIssueRenewalFailure(t *testing.T) {
	clock := &fakeClock{time.Now()}
	ca, err := openCA(t.TempDir(), clock.now)
	if err != nil {
		t.Fatal(err)
	}
	old, caDir := ca.inter, ca.caDir
	ca.caDir = filepath.Join(caDir, "missing")
	csrA, _ := newCSR(t, &x509.CertificateRequest{DNSNames: []string{"a.test"}})
	csrB, _ := newCSR(t, &x509.CertificateRequest{DNSNames: []string{"b.test"}})

	clock.t = old.NotAfter.Add(-24 * time.Hour)
	chain, err := issueCSR(t, ca, csrA)
	if err != nil {
		t.Fatalf("with a due intermediate that cannot be renewed: %v", err)
	}
	if !ca.inter.Equal(old) || !chain[0].NotAfter.Equal(old.NotAfter) {
		t.Errorf("leaf NotAfter got %v, want clamped to the old intermediate's %v", chain[0].NotAfter, old.NotAfter)
	}
	if err := verify(t, ca, chain, "a.test"); err != nil {
		t.Errorf("clamped leaf: %v", err)
	}

	clock.t = old.NotAfter.Add(time.Hour)
	if _, err := issueCSR(t, ca, csrB); err == nil {
		t.Fatal("issued with an expired intermediate")
	} else if !strings.Contains(err.Error(), "expired") {
		t.Errorf("error got %q, want it to say expired", err)
	}

	// The directory is back, but the last attempt was less than
	// interRetry ago: no new attempt yet.
	ca.caDir = caDir
	if _, err := issueCSR(t, ca, csrB); err == nil {
		t.Error("renewal retried before interRetry")
	}
	clock.t = clock.t.Add(interRetry)
	chain, err = issueCSR(t, ca, csrB)
	if err != nil {
		t.Fatalf("after the directory is back: %v", err)
	}
	if ca.inter.Equal(old) {
		t.Error("intermediate not renewed")
	}
	if err := verify(t, ca, chain, "b.test"); err != nil {
		t.Error(err)
	}
}

// TestIssueCanceledContext checks that Issue, which does no I/O that a
// context could cancel, still issues with a canceled context (certmagic
// may pass one that ends soon).
func TestIssueCanceledContext(t *testing.T) {
	ca, _ := openTestCA(t)
	csr, _ := newCSR(t, &x509.CertificateRequest{DNSNames: []string{"a.test"}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ca.Issue(ctx, csr); err != nil {
		t.Errorf("Issue with a canceled context: %v", err)
	}
}

// TestIssueConcurrent issues from many goroutines at once, with the
// intermediate due, for the race detector: exactly one new intermediate.
func TestIssueConcurrent(t *testing.T) {
	clock := &fakeClock{time.Now()}
	ca, err := openCA(t.TempDir(), clock.now)
	if err != nil {
		t.Fatal(err)
	}
	clock.t = ca.inter.NotAfter.Add(-IntermediateRenewBefore + time.Hour)
	csr, _ := newCSR(t, &x509.CertificateRequest{DNSNames: []string{"c.test"}})
	const n = 16
	inters := make([]*x509.Certificate, n)
	errs := make(chan error, n)
	done := make(chan struct{})
	for i := range n {
		go func() {
			defer func() { done <- struct{}{} }()
			ic, err := ca.Issue(context.Background(), csr)
			if err != nil {
				errs <- err
				return
			}
			_, rest := pem.Decode(ic.Certificate) // the leaf
			if block, _ := pem.Decode(rest); block != nil {
				inters[i], _ = x509.ParseCertificate(block.Bytes)
			}
		}()
	}
	for range n {
		<-done
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i, c := range inters {
		if c != nil && !c.Equal(inters[0]) {
			t.Errorf("goroutine %d got another intermediate: renewed more than once", i)
		}
	}
}

func BenchmarkIssue(b *testing.B) {
	ca, err := OpenCA(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	key, err := newKey()
	if err != nil {
		b.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{"bench.test"}}, crypto.Signer(key))
	if err != nil {
		b.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ca.Issue(context.Background(), csr); err != nil {
			b.Fatal(err)
		}
	}
}
