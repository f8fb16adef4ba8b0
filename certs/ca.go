// Package certs obtains, stores, renews and serves anx's certificates,
// through certmagic: from an ACME CA (Let's Encrypt by default; HTTP-01
// and TLS-ALPN-01 challenges, on-demand issuance guarded by an ask URL)
// for public names, and from anx's internal CA for localhost, IP addresses
// and internal names. The internal CA is a certmagic Issuer, so both kinds
// are stored and renewed the same way. Manager is the entry point: its
// GetCertificate is the TLS hook and its HTTPChallenge answers HTTP-01 on
// the plain-HTTP side.
//
// Under the data directory:
//
//	ca/root.pem               the internal root, 10 years; the one users trust
//	ca/root.key               its private key (0600)
//	ca/intermediate.pem       intermediate certificate, 1 year, signs the leaves
//	ca/intermediate.key       its private key (0600)
//	certificates/<issuer>/    certificates and keys, by issuer and name (certmagic)
//	acme/<ca>/                ACME accounts (certmagic)
//	locks/, ocsp/             certmagic's locks and OCSP staples
//	certificate-errors.json   the last issuance error of each name, for `anx certs`
//
// The root is created on first use and reused on every later start; the
// intermediate is replaced when less than 30 days of it are left.
package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Lifetimes of the internal CA's certificates.
const (
	// RootLifetime is the validity of a new root certificate.
	RootLifetime = 10 * 365 * 24 * time.Hour
	// IntermediateLifetime is the validity of a new intermediate; it never
	// outlives the root.
	IntermediateLifetime = 365 * 24 * time.Hour
	// IntermediateRenewBefore is how long before its expiry the intermediate
	// is replaced, at start or when a leaf is issued.
	IntermediateRenewBefore = 30 * 24 * time.Hour

	// backdate moves every NotBefore this far into the past, so that a peer
	// whose clock is a little behind ours still accepts a fresh certificate.
	backdate = time.Hour
	// interRetry is how long to wait before trying again to renew an
	// intermediate whose renewal failed at run time.
	interRetry = time.Minute
)

// File names inside <dir>/ca.
const (
	caDirName     = "ca"
	rootCertFile  = "root.pem"
	rootKeyFile   = "root.key"
	interCertFile = "intermediate.pem"
	interKeyFile  = "intermediate.key"

	rootCNPrefix  = "anx Local Root CA "
	interCNPrefix = "anx Local Intermediate CA "
)

// CA is anx's internal certificate authority. It is safe for concurrent
// use; it starts no goroutine.
type CA struct {
	// Set by OpenCA and read-only after.
	caDir   string            // absolute <dir>/ca
	root    *x509.Certificate // the trust anchor
	rootKey crypto.Signer     // signs intermediates only
	now     func() time.Time  // the clock; tests replace it before use

	// interMu guards the intermediate. It is held while the intermediate
	// is renewed (which writes files), never while a leaf is signed.
	interMu   sync.Mutex
	inter     *x509.Certificate
	interKey  crypto.Signer
	interNext time.Time // no run-time renewal attempt before this instant
}

// OpenCA opens the internal CA kept under dir (the data directory),
// creating dir/ca with a new root and intermediate on first use. It fails,
// naming the file, when a file is unreadable, corrupt or does not match its
// key or its issuer, rather than replace a root that users may trust.
func OpenCA(dir string) (*CA, error) {
	return openCA(dir, time.Now)
}

// openCA is OpenCA with a clock, for tests.
func openCA(dir string, now func() time.Time) (*CA, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("certs: data dir %q: %w", dir, err)
	}
	c := &CA{
		caDir: filepath.Join(abs, caDirName),
		now:   now,
	}
	if err := os.MkdirAll(c.caDir, 0o700); err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	if err := c.openRoot(); err != nil {
		return nil, err
	}
	if err := c.openIntermediate(); err != nil {
		return nil, err
	}
	return c, nil
}

// RootPath returns the absolute path of the root certificate, root.pem:
// the file users install in their trust stores.
func (c *CA) RootPath() string {
	return c.path(rootCertFile)
}

// Root returns the root certificate. The caller must not modify it.
func (c *CA) Root() *x509.Certificate {
	return c.root
}

// path returns the absolute path of a file in the CA directory.
func (c *CA) path(name string) string {
	return filepath.Join(c.caDir, name)
}

// openRoot loads the root and its key, or creates them when neither file
// exists. One without the other is an error: the root may already be
// trusted somewhere, so it is never replaced silently.
func (c *CA) openRoot() error {
	certPath, keyPath := c.path(rootCertFile), c.path(rootKeyFile)
	certOK, err := exists(certPath)
	if err != nil {
		return err
	}
	keyOK, err := exists(keyPath)
	if err != nil {
		return err
	}
	switch {
	case !certOK && !keyOK:
		return c.createRoot()
	case !certOK:
		return fmt.Errorf("certs: %s exists without %s; remove it to create a new root", keyPath, certPath)
	case !keyOK:
		return fmt.Errorf("certs: %s exists without its key %s", certPath, keyPath)
	}
	return c.loadRoot(certPath, keyPath)
}

// loadRoot reads the root pair and checks that it is a usable, self-signed
// CA certificate matching its key.
func (c *CA) loadRoot(certPath, keyPath string) error {
	root, err := readCert(certPath)
	if err != nil {
		return err
	}
	key, err := readKey(keyPath)
	if err != nil {
		return err
	}
	if err := checkCA(certPath, root); err != nil {
		return err
	}
	if err := root.CheckSignatureFrom(root); err != nil {
		return fmt.Errorf("certs: %s: not a self-signed root: %w", certPath, err)
	}
	if err := checkKeyMatch(keyPath, certPath, key, root); err != nil {
		return err
	}
	if !c.now().Before(root.NotAfter) {
		return fmt.Errorf("certs: %s expired on %s; move %s away to create a new root, then trust the new one",
			certPath, root.NotAfter.Format(time.DateOnly), c.caDir)
	}
	c.root, c.rootKey = root, key
	return nil
}

// createRoot makes a new root and writes it, key first, so that root.pem
// exists only once the pair is complete.
func (c *CA) createRoot() error {
	key, err := newKey()
	if err != nil {
		return err
	}
	suffix, err := randomHex(4)
	if err != nil {
		return err
	}
	now := c.now()
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: rootCNPrefix + suffix, Organization: []string{"anx"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(RootLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
	}
	root, err := sign(tmpl, nil, key.Public(), key)
	if err != nil {
		return err
	}
	if err := writePair(c.path(rootKeyFile), c.path(rootCertFile), key, root); err != nil {
		return err
	}
	c.root, c.rootKey = root, key
	return nil
}

// openIntermediate loads the intermediate, creating it when its
// certificate file is missing and renewing it when it expires within
// IntermediateRenewBefore. A failure to write the new one is an error here,
// at start, where it is seen.
func (c *CA) openIntermediate() error {
	certPath, keyPath := c.path(interCertFile), c.path(interKeyFile)
	certOK, err := exists(certPath)
	if err != nil {
		return err
	}
	if !certOK {
		// Nothing trusts an intermediate directly: a new one is harmless,
		// and a key left without its certificate is replaced.
		return c.renewIntermediate()
	}
	inter, err := readCert(certPath)
	if err != nil {
		return err
	}
	key, err := readKey(keyPath)
	if err != nil {
		return err
	}
	if err := c.checkIntermediate(certPath, keyPath, inter, key); err != nil {
		return err
	}
	c.inter, c.interKey = inter, key
	if c.interDue(c.now()) {
		return c.renewIntermediate()
	}
	return nil
}

// checkIntermediate checks that a loaded intermediate is a CA certificate
// signed by the root and matching its key.
func (c *CA) checkIntermediate(certPath, keyPath string, inter *x509.Certificate, key crypto.Signer) error {
	if err := checkCA(certPath, inter); err != nil {
		return err
	}
	if err := inter.CheckSignatureFrom(c.root); err != nil {
		return fmt.Errorf("certs: %s: not signed by %s (%w); remove %s and %s to have a new intermediate issued",
			certPath, c.RootPath(), err, certPath, keyPath)
	}
	return checkKeyMatch(keyPath, certPath, key, inter)
}

// interDue reports whether the intermediate should be replaced at now:
// when it expires within IntermediateRenewBefore and the root would let a
// new one live longer. The caller holds interMu or owns c exclusively.
func (c *CA) interDue(now time.Time) bool {
	return c.inter.NotAfter.Sub(now) < IntermediateRenewBefore && c.root.NotAfter.After(c.inter.NotAfter)
}

// renewIntermediate issues a new intermediate from the root, writes it and
// makes it current. The caller holds interMu or owns c exclusively.
func (c *CA) renewIntermediate() error {
	key, err := newKey()
	if err != nil {
		return err
	}
	now := c.now()
	notAfter := now.Add(IntermediateLifetime)
	if notAfter.After(c.root.NotAfter) {
		notAfter = c.root.NotAfter
	}
	suffix := c.root.Subject.CommonName[min(len(rootCNPrefix), len(c.root.Subject.CommonName)):]
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: interCNPrefix + suffix, Organization: []string{"anx"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	inter, err := sign(tmpl, c.root, key.Public(), c.rootKey)
	if err != nil {
		return err
	}
	if err := writePair(c.path(interKeyFile), c.path(interCertFile), key, inter); err != nil {
		return err
	}
	c.inter, c.interKey = inter, key
	return nil
}

// intermediate returns the intermediate that signs leaves, renewing it
// first when it is due. A failed renewal at run time keeps the current
// intermediate while it is still valid and is retried after interRetry;
// the error is returned only once the current one has expired.
func (c *CA) intermediate() (*x509.Certificate, crypto.Signer, error) {
	c.interMu.Lock()
	defer c.interMu.Unlock()
	now := c.now()
	if c.interDue(now) && !now.Before(c.interNext) {
		if err := c.renewIntermediate(); err != nil {
			c.interNext = now.Add(interRetry)
			if !now.Before(c.inter.NotAfter) {
				return nil, nil, fmt.Errorf("certs: intermediate expired and renewal failed: %w", err)
			}
		}
	}
	if !now.Before(c.inter.NotAfter) {
		return nil, nil, fmt.Errorf("certs: intermediate %s expired on %s", c.path(interCertFile), c.inter.NotAfter)
	}
	return c.inter, c.interKey, nil
}

// checkCA checks that cert can sign certificates.
func checkCA(path string, cert *x509.Certificate) error {
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return fmt.Errorf("certs: %s: not a CA certificate", path)
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return fmt.Errorf("certs: %s: key usage does not allow signing certificates", path)
	}
	return nil
}

// checkKeyMatch checks that key is the private key of cert.
func checkKeyMatch(keyPath, certPath string, key crypto.Signer, cert *x509.Certificate) error {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return fmt.Errorf("certs: %s does not match %s", keyPath, certPath)
	}
	return nil
}

// newKey generates an ECDSA P-256 key.
func newKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certs: generate key: %w", err)
	}
	return key, nil
}

// sign completes tmpl with a random serial number and signs it for pub: by
// parent with parentKey, or self-signed when parent is nil. It returns the parsed
// certificate.
func sign(tmpl, parent *x509.Certificate, pub crypto.PublicKey, parentKey crypto.Signer) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("certs: serial number: %w", err)
	}
	tmpl.SerialNumber = serial
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		return nil, fmt.Errorf("certs: sign %q: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certs: parse new certificate: %w", err)
	}
	return cert, nil
}

// randomHex returns n random bytes in hex.
func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("certs: random: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// exists reports whether path exists; errors other than "not found"
// (e.g. permission denied) are returned.
func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("certs: %w", err)
	}
}
