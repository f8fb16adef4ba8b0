package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// verify checks cert's chain against ca's root for name, as a client would
// at the time the certificate was issued.
func verify(t *testing.T, ca *CA, cert *tls.Certificate, name string) error {
	t.Helper()
	if len(cert.Certificate) != 2 {
		t.Fatalf("chain has %d certificates, want 2 (leaf + intermediate)", len(cert.Certificate))
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	inter, err := x509.ParseCertificate(cert.Certificate[1])
	if err != nil {
		t.Fatal(err)
	}
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(ca.Root())
	inters.AddCert(inter)
	_, err = leaf.Verify(x509.VerifyOptions{
		DNSName:       name,
		Roots:         roots,
		Intermediates: inters,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		CurrentTime:   leaf.NotBefore.Add(backdate),
	})
	return err
}

func TestCertificateVerifies(t *testing.T) {
	ca, _ := openTestCA(t)
	tests := []struct {
		name   string // asked for
		verify string // name the client checks
		isIP   bool
	}{
		{"localhost", "localhost", false},
		{"Api.Internal.", "api.internal", false},
		{"under_score.internal", "under_score.internal", false},
		{"127.0.0.1", "127.0.0.1", true},
		{"::1", "::1", true},
		{"::ffff:10.0.0.1", "10.0.0.1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert, err := ca.Certificate(tt.name)
			if err != nil {
				t.Fatalf("Certificate(%q): %v", tt.name, err)
			}
			if err := verify(t, ca, cert, tt.verify); err != nil {
				t.Errorf("Verify(%q): %v", tt.verify, err)
			}
			leaf := cert.Leaf
			if gotIP := len(leaf.IPAddresses) == 1 && len(leaf.DNSNames) == 0; gotIP != tt.isIP {
				t.Errorf("SAN got DNS %v IP %v, want IP: %v", leaf.DNSNames, leaf.IPAddresses, tt.isIP)
			}
			if len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth || leaf.IsCA {
				t.Errorf("ExtKeyUsage got %v IsCA %v, want [ServerAuth] false", leaf.ExtKeyUsage, leaf.IsCA)
			}
			key, ok := cert.PrivateKey.(*ecdsa.PrivateKey)
			if !ok || key.Curve != elliptic.P256() {
				t.Errorf("key got %T, want ECDSA P-256", cert.PrivateKey)
			}
			if got := leaf.NotAfter.Sub(leaf.NotBefore); got != LeafLifetime+backdate {
				t.Errorf("lifetime got %v, want %v", got, LeafLifetime+backdate)
			}
		})
	}
}

func TestCertificateWrongName(t *testing.T) {
	ca, _ := openTestCA(t)
	cert, err := ca.Certificate("a.internal")
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(t, ca, cert, "b.internal"); err == nil {
		t.Error("certificate for a.internal verified for b.internal")
	}
}

func TestCertificateInvalidNames(t *testing.T) {
	ca, _ := openTestCA(t)
	long := "a"
	for len(long) < 254 {
		long += ".a"
	}
	names := []string{
		"", ".", "*.example.com", "a..b", "-a.example", "a-.example", "exa mple", "é.example",
		"fe80::1%eth0", "a.b/c", long, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example",
	}
	for _, name := range names {
		if cert, err := ca.Certificate(name); err == nil {
			t.Errorf("Certificate(%q) got %v, want an error", name, cert.Leaf.DNSNames)
		}
	}
	if len(ca.leaves) != 0 {
		t.Errorf("cache holds %d entries after invalid names, want 0", len(ca.leaves))
	}
}

func TestCertificateCacheAndRenewal(t *testing.T) {
	clock := &fakeClock{time.Now()}
	ca, err := openCA(t.TempDir(), clock.now)
	if err != nil {
		t.Fatal(err)
	}
	first, err := ca.Certificate("renew.test")
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := ca.Certificate("RENEW.test."); again != first {
		t.Error("second call for the same name issued again")
	}
	if other, _ := ca.Certificate("other.test"); other == first {
		t.Error("another name got the same certificate")
	}
	// Renewal starts when less than a third of the lifetime (7d + 1h
	// backdate) remains, at about 4d 15h after issuance.
	tests := []struct {
		after time.Duration
		renew bool
	}{
		{4 * 24 * time.Hour, false},
		{4*24*time.Hour + 15*time.Hour, false},
		{4*24*time.Hour + 16*time.Hour, true},
	}
	for _, tt := range tests {
		clock.t = first.Leaf.NotBefore.Add(backdate + tt.after)
		got, err := ca.Certificate("renew.test")
		if err != nil {
			t.Fatal(err)
		}
		if renewed := got != first; renewed != tt.renew {
			t.Errorf("after %v: renewed got %v, want %v", tt.after, renewed, tt.renew)
		}
		if tt.renew && !got.Leaf.NotBefore.Equal(clock.t.Add(-backdate)) {
			t.Errorf("renewed NotBefore got %v, want %v", got.Leaf.NotBefore, clock.t.Add(-backdate))
		}
	}
}

// TestCertificateRenewsIntermediate issues a leaf when the intermediate is
// due and checks that a new one is made, written and used.
func TestCertificateRenewsIntermediate(t *testing.T) {
	clock := &fakeClock{time.Now()}
	ca, err := openCA(t.TempDir(), clock.now)
	if err != nil {
		t.Fatal(err)
	}
	old := ca.inter
	clock.t = old.NotAfter.Add(-IntermediateRenewBefore + time.Hour)
	cert, err := ca.Certificate("late.test")
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
	if err := cert.Leaf.CheckSignatureFrom(ca.inter); err != nil {
		t.Errorf("leaf not signed by the new intermediate: %v", err)
	}
}

// TestCertificateRenewalFailure makes the intermediate's renewal fail (its
// directory is gone) and checks that the old one keeps signing while
// valid, that failures are not cached, and that issuance fails once the
// old intermediate has expired.
func TestCertificateRenewalFailure(t *testing.T) {
	clock := &fakeClock{time.Now()}
	ca, err := openCA(t.TempDir(), clock.now)
	if err != nil {
		t.Fatal(err)
	}
	old, caDir := ca.inter, ca.caDir
	ca.caDir = filepath.Join(caDir, "missing")

	clock.t = old.NotAfter.Add(-24 * time.Hour)
	cert, err := ca.Certificate("a.test")
	if err != nil {
		t.Fatalf("with a due intermediate that cannot be renewed: %v", err)
	}
	if !ca.inter.Equal(old) || !cert.Leaf.NotAfter.Equal(old.NotAfter) {
		t.Errorf("leaf NotAfter got %v, want clamped to the old intermediate's %v", cert.Leaf.NotAfter, old.NotAfter)
	}

	clock.t = old.NotAfter.Add(time.Hour)
	if _, err := ca.Certificate("b.test"); err == nil {
		t.Fatal("issued with an expired intermediate")
	}
	if _, ok := ca.leaves["b.test"]; ok {
		t.Error("a failed issuance stayed in the cache")
	}

	ca.caDir = caDir
	clock.t = clock.t.Add(interRetry)
	cert, err = ca.Certificate("b.test")
	if err != nil {
		t.Fatalf("after the directory is back: %v", err)
	}
	if err := verify(t, ca, cert, "b.test"); err != nil {
		t.Error(err)
	}
}

// TestCertificateSingleFlight asks for one name from many goroutines at
// once and checks that one certificate was issued.
func TestCertificateSingleFlight(t *testing.T) {
	ca, _ := openTestCA(t)
	const n = 64
	certs := make([]*tls.Certificate, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			c, err := ca.Certificate("burst.test")
			if err != nil {
				t.Error(err)
			}
			certs[i] = c
		})
	}
	close(start)
	wg.Wait()
	for i, c := range certs {
		if c != certs[0] {
			t.Fatalf("goroutine %d got another certificate: issued more than once", i)
		}
	}
}

func TestCertificateCacheBound(t *testing.T) {
	if testing.Short() {
		t.Skip("issues over a thousand certificates")
	}
	ca, _ := openTestCA(t)
	for i := range maxLeaves + 10 {
		if _, err := ca.Certificate(fmt.Sprintf("n%d.test", i)); err != nil {
			t.Fatal(err)
		}
	}
	if len(ca.leaves) > maxLeaves {
		t.Errorf("cache holds %d entries, want at most %d", len(ca.leaves), maxLeaves)
	}
}

func BenchmarkCertificateIssue(b *testing.B) {
	ca, err := OpenCA(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ca.issue("bench.test", false); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCertificateCached(b *testing.B) {
	ca, err := OpenCA(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ca.Certificate("bench.test"); err != nil {
			b.Fatal(err)
		}
	}
}
