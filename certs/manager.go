package certs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// onDemandLimiter returns the rate limiter of on-demand issuances: the
// previous plan's when the limit is the same (a reload does not refill the
// bucket), else a new, full one.
func onDemandLimiter(o *OnDemand, prev *plan) *rate.Limiter {
	n, interval := o.rate()
	limit := rate.Every(interval / time.Duration(n)) // n at once, then one every interval/n
	if prev != nil && prev.limiter.Limit() == limit && prev.limiter.Burst() == n {
		return prev.limiter
	}
	return rate.NewLimiter(limit, n)
}

// ErrNotAllowed is returned (wrapped) by Manager.GetCertificate for a name
// the policy does not allow, and for a ClientHello without SNI when neither
// the local address nor a default name can be used.
var ErrNotAllowed = errors.New("certs: name not allowed")

// cacheCapacity bounds the certificates held in memory; on-demand names
// beyond it push out others, which are loaded again from storage.
const cacheCapacity = 10000

// Manager obtains, stores, renews and serves certificates under a Policy,
// through certmagic: from an ACME CA (HTTP-01, TLS-ALPN-01) and from the
// internal CA, which is a certmagic Issuer like any other. Certificates and
// ACME accounts live under the data directory; a restart loads them.
//
// Open starts certmagic's maintenance goroutine (renewals, OCSP staples)
// and Close stops it. Apply may be called again to change the policy (on a
// reload); GetCertificate serves the current one. All methods are safe for
// concurrent use.
type Manager struct {
	// Set by Open and read-only after.
	ca      *CA
	dir     string
	storage *certmagic.FileStorage
	log     *slog.Logger
	zlog    *zap.Logger
	status  *statusBook
	ctx     context.Context // ends at Close
	stop    context.CancelFunc

	applyMu    sync.Mutex         // serializes Apply and Close
	planCancel context.CancelFunc // ends the current plan's background obtains; guarded by applyMu
	plan       atomic.Pointer[plan]
	cache      *certmagic.Cache // the current plan's; guarded by applyMu
	cacheEvery time.Duration    // its renewal check interval; guarded by applyMu
}

// Open opens the internal CA and the certificate storage under dir (the
// data directory). Nothing is served until Apply, which starts the
// maintenance goroutine.
func Open(dir string, logger *slog.Logger) (*Manager, error) {
	ca, err := OpenCA(dir)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("certs: data dir %q: %w", dir, err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := &Manager{
		ca:      ca,
		dir:     abs,
		storage: &certmagic.FileStorage{Path: abs},
		log:     logger,
		zlog:    newZapLogger(logger.Handler(), "certmagic"),
		status:  openStatusBook(abs),
	}
	m.ctx, m.stop = context.WithCancel(context.Background())
	return m, nil
}

// newCache starts a certificate cache whose maintenance goroutine checks
// renewals every so often (certmagic fixes the interval at start).
func (m *Manager) newCache(every time.Duration) *certmagic.Cache {
	return certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   m.configForCert,
		RenewCheckInterval: every,
		Capacity:           cacheCapacity,
		Logger:             m.zlog,
	})
}

// CA returns the internal CA.
func (m *Manager) CA() *CA { return m.ca }

// Close stops background work: maintenance, obtains in progress and the
// rate limiter. Certificates already served stay valid.
func (m *Manager) Close() {
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	if m.ctx.Err() != nil {
		return
	}
	m.stop()
	if m.planCancel != nil {
		m.planCancel()
	}
	if m.cache != nil {
		m.cache.Stop()
	}
}

// Apply makes p the policy served. Certificates of exact internal names
// are issued (or loaded) before it returns; those of ACME names are loaded
// from storage, or obtained in the background, retried with backoff, with
// each failure logged and kept for List. On error the previous policy
// stays in force.
func (m *Manager) Apply(p Policy) error {
	pl, err := compilePolicy(&p)
	if err != nil {
		return err
	}
	roots, err := p.ACME.roots()
	if err != nil {
		return err
	}
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	if m.ctx.Err() != nil {
		return errors.New("certs: manager closed")
	}
	cache, fresh := m.cache, false
	if every := p.renewInterval(); cache == nil || every != m.cacheEvery {
		cache, fresh = m.newCache(every), true
	}
	m.buildConfigs(pl, cache, roots)
	ctx, cancel := context.WithCancel(m.ctx)
	if err := manage(ctx, cache, pl); err != nil {
		cancel()
		if fresh {
			cache.Stop()
		}
		return err
	}
	pl.limiter = onDemandLimiter(&p.OnDemand, m.plan.Load())
	old := m.plan.Swap(pl)
	if m.planCancel != nil {
		m.planCancel()
	}
	m.planCancel = cancel
	if fresh {
		if m.cache != nil {
			m.cache.Stop()
		}
		m.cache, m.cacheEvery = cache, p.renewInterval()
	} else {
		m.unmanageRemoved(old, pl)
	}
	return nil
}

// manage loads or issues the exact internal names of pl, and loads its
// ACME names from storage, or starts obtaining them (in the background,
// until ctx ends).
func manage(ctx context.Context, cache *certmagic.Cache, pl *plan) error {
	internal, acme := pl.exactNames()
	if err := pl.internal.ManageSync(ctx, internal); err != nil {
		return fmt.Errorf("certs: internal CA: %w", err)
	}
	if len(acme) > 0 {
		loadStored(ctx, cache, pl.acme, acme)
		if err := pl.acme.ManageAsync(ctx, acme); err != nil {
			return fmt.Errorf("certs: %w", err)
		}
	}
	return nil
}

// loadStored puts the stored certificates of names into cache before
// Apply returns, so that a restarted anx serves them from its first
// handshake: certmagic's ManageAsync loads them on goroutines of its own,
// and skips the names already loaded. A certificate due for renewal is
// taken out again, for ManageAsync to load and renew in the background
// (it would otherwise wait for the first maintenance tick); so is a name
// without a stored certificate, or whose files cannot be read.
func loadStored(ctx context.Context, cache *certmagic.Cache, cfg *certmagic.Config, names []string) {
	for _, name := range names {
		cert, err := cfg.CacheManagedCertificate(ctx, name)
		if err == nil && cert.NeedsRenewal(cfg) {
			cache.Remove([]string{cert.Hash()})
		}
	}
}

// unmanageRemoved stops renewing the exact names old had and cur has not,
// in the cache they share.
func (m *Manager) unmanageRemoved(old, cur *plan) {
	if old == nil {
		return
	}
	var gone []certmagic.SubjectIssuer
	for name := range old.exact {
		if cur.exact[name] == nil {
			gone = append(gone, certmagic.SubjectIssuer{Subject: name})
		}
	}
	if len(gone) > 0 {
		m.cache.RemoveManaged(gone)
	}
}

// GetCertificate is a tls.Config.GetCertificate hook. With SNI it serves
// the name if the policy allows it. Without SNI it serves the local IP
// address the client connected to if the policy names it, else the default
// name. ACME's TLS-ALPN-01 validation handshakes (ALPN acme-tls/1 only) get
// the challenge certificate. Anything else fails with an error wrapping
// ErrNotAllowed, which fails the handshake with an alert, and nothing is
// issued.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	pl := m.plan.Load()
	if pl == nil {
		return nil, fmt.Errorf("%w: no policy applied", ErrNotAllowed)
	}
	name, isIP, err := pl.serverName(hello)
	if err != nil {
		return nil, err
	}
	cfg, _ := pl.config(name, isIP)
	if cfg == nil {
		return nil, fmt.Errorf("%w: %q", ErrNotAllowed, name)
	}
	if pl.exact[name] == nil && strings.Contains(name, "_") {
		// certmagic obtains at handshake time only names its IDNA check
		// accepts, which has no underscore; an exact name works.
		return nil, fmt.Errorf("%w: %q: a name with an underscore must be listed exactly, not matched by a wildcard", ErrNotAllowed, name)
	}
	if hello.ServerName != name {
		h := *hello
		h.ServerName = name
		hello = &h
	}
	return cfg.GetCertificate(hello)
}

// HTTPChallenge answers ACME's HTTP-01 validation: for a request to host
// (without port) and path that is a challenge anx is solving, it returns
// the key authorization to send with status 200.
func (m *Manager) HTTPChallenge(host, path string) (keyAuth string, ok bool) {
	chal, ok := certmagic.GetACMEChallenge(host)
	if !ok || chal.Type != ChallengeHTTP01 || path != chal.HTTP01ResourcePath() {
		return "", false
	}
	return chal.KeyAuthorization, true
}

// configForCert tells certmagic's maintenance which config renews a
// cached certificate: the current plan's for its first name.
func (m *Manager) configForCert(cert certmagic.Certificate) (*certmagic.Config, error) {
	pl := m.plan.Load()
	if pl == nil || len(cert.Names) == 0 {
		return nil, errors.New("certs: no policy for the certificate")
	}
	name, isIP, err := canonicalName(cert.Names[0])
	if err != nil {
		return nil, err
	}
	cfg, _ := pl.config(name, isIP)
	if cfg == nil {
		return nil, fmt.Errorf("certs: %q is no longer in the policy", name)
	}
	return cfg, nil
}

// localIP returns the local IP address of conn, unmapped and without zone.
// conn may be nil (a ClientHelloInfo made by hand); quic-go sets one that
// carries the addresses.
func localIP(conn net.Conn) (netip.Addr, bool) {
	if conn == nil {
		return netip.Addr{}, false
	}
	var ap netip.AddrPort
	switch a := conn.LocalAddr().(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	default:
		return netip.Addr{}, false
	}
	ip := ap.Addr().Unmap().WithZone("")
	return ip, ip.IsValid()
}
