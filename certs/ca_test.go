package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// openTestCA opens a CA in a new temporary data directory.
func openTestCA(t *testing.T) (*CA, string) {
	t.Helper()
	dir := t.TempDir()
	ca, err := OpenCA(dir)
	if err != nil {
		t.Fatalf("OpenCA: %v", err)
	}
	return ca, dir
}

// fakeClock is a settable clock for a CA; tests set it from one goroutine
// while no certificate is being issued.
type fakeClock struct{ t time.Time }

// now returns the clock's time.
func (f *fakeClock) now() time.Time { return f.t }

func TestOpenCACreatesFiles(t *testing.T) {
	ca, dir := openTestCA(t)
	caDir := filepath.Join(dir, "ca")
	modes := []struct {
		path string
		want os.FileMode
	}{
		{caDir, os.ModeDir | 0o700},
		{filepath.Join(caDir, "root.pem"), 0o644},
		{filepath.Join(caDir, "root.key"), 0o600},
		{filepath.Join(caDir, "intermediate.pem"), 0o644},
		{filepath.Join(caDir, "intermediate.key"), 0o600},
	}
	for _, m := range modes {
		fi, err := os.Stat(m.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode(); got != m.want {
			t.Errorf("%s: mode got %v, want %v", m.path, got, m.want)
		}
	}
	entries, _ := os.ReadDir(caDir)
	if len(entries) != 4 {
		t.Errorf("ca dir holds %d entries, want 4 (no temporary files left)", len(entries))
	}
	if got, want := ca.RootPath(), filepath.Join(caDir, "root.pem"); got != want || !filepath.IsAbs(got) {
		t.Errorf("RootPath got %q, want %q (absolute)", got, want)
	}
}

func TestOpenCARelativeDir(t *testing.T) {
	t.Chdir(t.TempDir())
	ca, err := OpenCA("data")
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(ca.RootPath()) {
		t.Errorf("RootPath got %q, want an absolute path", ca.RootPath())
	}
}

func TestOpenCACertificates(t *testing.T) {
	ca, _ := openTestCA(t)
	root, inter := ca.root, ca.inter
	if !strings.HasPrefix(root.Subject.CommonName, rootCNPrefix) || len(root.Subject.CommonName) == len(rootCNPrefix) {
		t.Errorf("root CN got %q, want %q + a suffix", root.Subject.CommonName, rootCNPrefix)
	}
	if !root.IsCA || root.MaxPathLen != 1 || root.KeyUsage != keyUsageCA {
		t.Errorf("root: IsCA %v MaxPathLen %d KeyUsage %v, want true 1 %v", root.IsCA, root.MaxPathLen, root.KeyUsage, keyUsageCA)
	}
	if !inter.IsCA || inter.MaxPathLen != 0 || !inter.MaxPathLenZero || inter.KeyUsage != keyUsageCA {
		t.Errorf("intermediate: IsCA %v MaxPathLen %d/%v KeyUsage %v", inter.IsCA, inter.MaxPathLen, inter.MaxPathLenZero, inter.KeyUsage)
	}
	if err := inter.CheckSignatureFrom(root); err != nil {
		t.Errorf("intermediate not signed by root: %v", err)
	}
	for _, c := range []struct {
		name     string
		lifetime time.Duration
		want     time.Duration
	}{
		{"root", root.NotAfter.Sub(root.NotBefore), RootLifetime + backdate},
		{"intermediate", inter.NotAfter.Sub(inter.NotBefore), IntermediateLifetime + backdate},
	} {
		if d := c.lifetime - c.want; d < -time.Minute || d > time.Minute {
			t.Errorf("%s lifetime got %v, want %v", c.name, c.lifetime, c.want)
		}
	}
	if _, ok := ca.rootKey.(*ecdsa.PrivateKey); !ok {
		t.Errorf("root key is %T, want ECDSA", ca.rootKey)
	}
}

func TestOpenCAReusesRoot(t *testing.T) {
	first, dir := openTestCA(t)
	rootPEM := readFile(t, first.RootPath())
	interPEM := readFile(t, first.path(interCertFile))
	second, err := OpenCA(dir)
	if err != nil {
		t.Fatalf("second OpenCA: %v", err)
	}
	if got := readFile(t, second.RootPath()); !bytes.Equal(got, rootPEM) {
		t.Error("root.pem changed on the second open")
	}
	if got := readFile(t, second.path(interCertFile)); !bytes.Equal(got, interPEM) {
		t.Error("intermediate.pem changed on the second open")
	}
	if !second.root.Equal(first.root) || !second.inter.Equal(first.inter) {
		t.Error("second open loaded other certificates")
	}
}

func TestOpenCARootsDiffer(t *testing.T) {
	a, _ := openTestCA(t)
	b, _ := openTestCA(t)
	if a.root.Subject.CommonName == b.root.Subject.CommonName {
		t.Errorf("two roots share the CN %q", a.root.Subject.CommonName)
	}
}

func TestOpenCAMissingIntermediate(t *testing.T) {
	first, dir := openTestCA(t)
	for _, f := range []string{interCertFile, interKeyFile} {
		if err := os.Remove(first.path(f)); err != nil {
			t.Fatal(err)
		}
	}
	second, err := OpenCA(dir)
	if err != nil {
		t.Fatalf("OpenCA without intermediate: %v", err)
	}
	if second.inter.Equal(first.inter) {
		t.Error("intermediate not recreated")
	}
	if !second.root.Equal(first.root) {
		t.Error("root changed")
	}
}

// TestOpenCABadFiles breaks one file at a time and checks that OpenCA fails
// with an error naming it.
func TestOpenCABadFiles(t *testing.T) {
	other, _ := openTestCA(t)
	garbage := []byte("not a certificate\n")
	badDER := []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
	tests := []struct {
		name    string
		file    string // the file the error must name
		corrupt func(t *testing.T, ca *CA)
	}{
		{"garbage root.pem", rootCertFile, func(t *testing.T, ca *CA) { writeFile(t, ca.path(rootCertFile), garbage) }},
		{"bad DER root.pem", rootCertFile, func(t *testing.T, ca *CA) { writeFile(t, ca.path(rootCertFile), badDER) }},
		{"garbage root.key", rootKeyFile, func(t *testing.T, ca *CA) { writeFile(t, ca.path(rootKeyFile), garbage) }},
		{"other root.key", rootKeyFile, func(t *testing.T, ca *CA) { copyFile(t, other.path(rootKeyFile), ca.path(rootKeyFile)) }},
		{"root.key missing", rootKeyFile, func(t *testing.T, ca *CA) { removeFile(t, ca.path(rootKeyFile)) }},
		{"root.pem missing", rootCertFile, func(t *testing.T, ca *CA) { removeFile(t, ca.path(rootCertFile)) }},
		{"root.pem not a CA", rootCertFile, func(t *testing.T, ca *CA) { writeLeafAs(t, ca, rootCertFile) }},
		{"garbage intermediate.pem", interCertFile, func(t *testing.T, ca *CA) { writeFile(t, ca.path(interCertFile), garbage) }},
		{"garbage intermediate.key", interKeyFile, func(t *testing.T, ca *CA) { writeFile(t, ca.path(interKeyFile), garbage) }},
		{"intermediate.key missing", interKeyFile, func(t *testing.T, ca *CA) { removeFile(t, ca.path(interKeyFile)) }},
		{"other intermediate.key", interKeyFile, func(t *testing.T, ca *CA) { copyFile(t, other.path(interKeyFile), ca.path(interKeyFile)) }},
		{"intermediate of another root", interCertFile, func(t *testing.T, ca *CA) {
			copyFile(t, other.path(interCertFile), ca.path(interCertFile))
			copyFile(t, other.path(interKeyFile), ca.path(interKeyFile))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca, dir := openTestCA(t)
			tt.corrupt(t, ca)
			_, err := OpenCA(dir)
			if err == nil {
				t.Fatalf("OpenCA got no error, want one naming %s", tt.file)
			}
			if !strings.Contains(err.Error(), ca.path(tt.file)) || !strings.HasPrefix(err.Error(), "certs: ") {
				t.Errorf("OpenCA error got %q, want it to start with \"certs: \" and name %s", err, ca.path(tt.file))
			}
		})
	}
}

func TestOpenCAExpiredRoot(t *testing.T) {
	_, dir := openTestCA(t)
	clock := &fakeClock{time.Now().Add(RootLifetime + time.Hour)}
	_, err := openCA(dir, clock.now)
	if err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("open with an expired root: got %v, want an error saying expired", err)
	}
}

func TestOpenCARenewsIntermediate(t *testing.T) {
	first, dir := openTestCA(t)
	tests := []struct {
		name  string
		after time.Duration
		renew bool
	}{
		{"31 days left", IntermediateLifetime - 31*24*time.Hour, false},
		{"29 days left", IntermediateLifetime - 29*24*time.Hour, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{time.Now().Add(tt.after)}
			ca, err := openCA(dir, clock.now)
			if err != nil {
				t.Fatal(err)
			}
			if renewed := !ca.inter.Equal(first.inter); renewed != tt.renew {
				t.Errorf("renewed got %v, want %v", renewed, tt.renew)
			}
			onDisk, err := readCert(ca.path(interCertFile))
			if err != nil {
				t.Fatal(err)
			}
			if !onDisk.Equal(ca.inter) {
				t.Error("intermediate.pem does not hold the intermediate in use")
			}
		})
	}
}

// keyUsageCA is the key usage of anx's root and intermediate.
const keyUsageCA = x509.KeyUsageCertSign | x509.KeyUsageCRLSign

// readFile reads a file or fails the test.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeFile writes a file or fails the test.
func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// copyFile copies a file or fails the test.
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	writeFile(t, to, readFile(t, from))
}

// removeFile removes a file or fails the test.
func removeFile(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

// writeLeafAs writes a leaf certificate of ca, with its key, over the
// certificate file name and its key.
func writeLeafAs(t *testing.T, ca *CA, name string) {
	t.Helper()
	leaf, leafKey := issueLeaf(t, ca, "leaf.test")
	key := strings.TrimSuffix(name, ".pem") + ".key"
	if err := writePair(ca.path(key), ca.path(name), leafKey, leaf); err != nil {
		t.Fatal(err)
	}
}
