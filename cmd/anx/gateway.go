package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anx-gateway/anx/cmd/anx/internal/config"

	"github.com/anx-gateway/anx/certs"
	"github.com/anx-gateway/anx/core/message"
	"github.com/anx-gateway/anx/core/proxy"
	"github.com/anx-gateway/anx/core/route"
	"github.com/anx-gateway/anx/h1"
	"github.com/anx-gateway/anx/h2"
	"github.com/anx-gateway/anx/h3"
	"github.com/anx-gateway/anx/tls/onloop"
	"github.com/anx-gateway/anx/tls/terminate"
)

// gateway is one running anx: its listeners and the servers behind them.
// newGateway opens everything, start serves, reload changes the sites,
// shutdown drains; all of them run on the main goroutine, and each
// server's goroutines are owned by that server.
type gateway struct {
	cfg   config.Config
	log   *slog.Logger
	certs *certs.Manager

	udp     net.PacketConn // HTTP/3
	quicTag uint32         // h3.Server.ConnectionIDTag: what a binary upgrade steers by

	h1TLS      *h1.Server // HTTPS over TCP on the event loops: TLS, then h1 here or h2 by ALPN
	h1Plain    *h1.Server // plain HTTP on the event loops
	h2         *h2.Server // HTTP/2 on the HTTPS port's loops, by ALPN
	h2c        *h2.Server // HTTP/2 with prior knowledge on the plain port's loops
	h3         *h3.Server
	secure     *route.Live       // what HTTPS serves, whatever the protocol
	plain      *route.Live       // what plain HTTP serves
	handlers   handlers          // the static and proxy handlers under the live tables
	transports *proxy.Transports // the upstream connections every proxy route shares, across reloads
	tunnels    atomic.Bool       // some route proxies, so an HTTP/2 extended CONNECT can reach a tunnel
	inherited  *inherited        // the sockets of a binary upgrade (upgrade_child.go); nil: bind
	// observers see every exchange (access log, metrics); filled before
	// buildServers, which hands them to every protocol server.
	observers observers
	access    *accessLogs // the access log, one of the observers (accesslog.go)
	admin     *adminState // the admin listener, whose counters are an observer (admin.go); nil when off
	conns     *connLimits // max_conns and max_conns_per_ip over every protocol (connlimits.go)
}

// newGateway builds the servers for cfg and opens its listeners. On error
// nothing is left open.
func newGateway(cfg config.Config, logger *slog.Logger) (_ *gateway, err error) {
	return openGateway(cfg, logger, nil)
}

// openGateway is newGateway on the sockets a binary upgrade handed over,
// when in is not nil.
func openGateway(cfg config.Config, logger *slog.Logger, in *inherited) (_ *gateway, err error) {
	gw := &gateway{cfg: cfg, log: logger, transports: proxy.NewTransports(), inherited: in, quicTag: in.connectionIDTag()}
	defer func() {
		if err != nil {
			gw.closeAll()
		}
	}()
	if gw.certs, err = certs.Open(cfg.Data, logger); err != nil {
		return nil, err
	}
	if err = gw.listen(); err != nil {
		return nil, err
	}
	if err = gw.openAdmin(); err != nil {
		return nil, err
	}
	s, err := gw.buildSites(&cfg)
	if err != nil {
		return nil, err
	}
	gw.setHandlers(s.handlers)
	if err = gw.openAccessLogs(&cfg, s.handlers.routes); err != nil {
		return nil, err
	}
	if err = gw.certs.Apply(cfg.CertPolicy(gw.httpPort(), gw.httpsPort())); err != nil {
		return nil, err
	}
	tlsConfig, err := gw.tlsConfig()
	if err != nil {
		return nil, err
	}
	gw.secure, gw.plain = route.NewLive(s.secure), route.NewLive(s.plain)
	gw.buildServers(tlsConfig)
	gw.limitConns(&cfg, tlsConfig)
	return gw, nil
}

// sites is what a config's sites become: the two routing tables and the
// handlers under them.
type sites struct {
	secure, plain *route.Table
	handlers      handlers
}

// buildSites opens the sites of cfg. On error nothing is left open.
func (gw *gateway) buildSites(cfg *config.Config) (sites, error) {
	var s sites
	siteHandlers, err := gw.siteHandlers(cfg, &s.handlers)
	if err == nil {
		s.secure, s.plain, err = gw.routeTables(cfg, siteHandlers)
	}
	if err != nil {
		s.handlers.close()
		return sites{}, err
	}
	return s, nil
}

// reload serves cfg's sites and certificate policy from now on, on the
// running listeners. Listener addresses, the data dir, timeouts, limits and
// [files] take effect only at a restart; a change to them is logged. On
// error the running sites keep serving, unchanged.
func (gw *gateway) reload(cfg config.Config) error {
	for _, key := range cfg.KeepRestartOnly(&gw.cfg) {
		gw.log.Warn("reload: this setting changes only at a restart; the running value stays", "key", key)
	}
	s, err := gw.buildSites(&cfg)
	if err != nil {
		return err
	}
	logs, err := gw.access.prepare(&cfg, s.handlers.routes)
	if err != nil {
		s.handlers.close()
		return err
	}
	if err := gw.certs.Apply(cfg.CertPolicy(gw.httpPort(), gw.httpsPort())); err != nil {
		s.handlers.close()
		logs.discard()
		return err
	}
	// Before the new tables: their routes must have a log from the first request.
	gw.access.use(logs, gw.handlers.routes, gw.drainTimeout())
	gw.secure.Store(s.secure)
	gw.plain.Store(s.plain)
	old := gw.handlers
	gw.setHandlers(s.handlers)
	gw.conns.apply(&cfg)
	gw.cfg = cfg
	// The new proxy handlers hold the transports of the upstreams that
	// remain, so closing the old ones now keeps their pooled connections;
	// requests and tunnels in flight on them finish.
	old.closeProxies()
	// Requests routed by the old tables may still be sending files; the
	// timer's goroutine closes the old static handlers once they have had
	// the drain timeout to finish.
	time.AfterFunc(gw.drainTimeout(), old.closeStatics)
	return nil
}

// setHandlers makes h the handlers under the live tables.
func (gw *gateway) setHandlers(h handlers) {
	gw.handlers = h
	gw.tunnels.Store(len(h.proxies) > 0)
	gw.adminRoutes(&h)
}

// listen opens the HTTPS port on TCP and UDP and the plain-HTTP port. A
// port of 0 on the HTTPS address picks one free port for both.
func (gw *gateway) listen() error {
	gw.h1TLS, gw.h1Plain = &h1.Server{}, &h1.Server{}
	if gw.inherited != nil {
		return gw.inherited.listen(gw)
	}
	if err := gw.h1TLS.Listen(gw.cfg.HTTPS); err != nil {
		return listenError("https", gw.cfg.HTTPS, err)
	}
	udpAddr := net.JoinHostPort(hostOf(gw.cfg.HTTPS), strconv.Itoa(gw.httpsPort()))
	var err error
	if gw.udp, err = h3.ListenPacket(context.Background(), udpAddr); err != nil {
		return listenError("https (UDP, HTTP/3)", udpAddr, err)
	}
	if err := gw.h1Plain.Listen(gw.cfg.HTTP); err != nil {
		return listenError("http", gw.cfg.HTTP, err)
	}
	return nil
}

// listenError says which listener could not open, in one line.
func listenError(which, addr string, err error) error {
	var opErr *net.OpError
	var sysErr *os.SyscallError
	switch {
	case errors.As(err, &opErr) && opErr.Err != nil:
		err = opErr.Err
	case errors.As(err, &sysErr):
		err = sysErr.Err
	}
	return fmt.Errorf("cannot listen for %s on %s: %v", which, addr, err)
}

// tlsConfig builds the TLS policy, with certificates from the manager, and
// ALPN acme-tls/1 for TLS-ALPN-01 validations.
func (gw *gateway) tlsConfig() (*tls.Config, error) {
	tc := terminate.Config{
		GetCertificate: gw.certs.GetCertificate,
		NextProtos:     []string{"h2", "http/1.1", acmeTLS1},
	}
	if err := tc.Validate(); err != nil {
		return nil, err
	}
	return tc.TLSConfig(), nil
}

// acmeTLS1 is the ALPN protocol of ACME's TLS-ALPN-01 validation (RFC 8737).
const acmeTLS1 = "acme-tls/1"

// routeTables builds the two routing tables: HTTPS serves every site, with
// its Strict-Transport-Security; plain HTTP answers ACME HTTP-01
// validations, serves the sites in serve mode and redirects the others.
func (gw *gateway) routeTables(cfg *config.Config, handlers []message.Handler) (secure, plain *route.Table, err error) {
	var secureSites, plainSites []route.Site
	redirect := route.RedirectHTTPS{Port: gw.httpsPort()}
	for i, s := range cfg.Sites {
		hosts := config.SiteHosts(s, cfg.Sites)
		secureSites = append(secureSites, hstsSites(s.HSTS, hosts, handlers[i])...)
		var onPlain message.Handler = redirect
		if s.HTTPMode == config.HTTPServe {
			onPlain = handlers[i]
		}
		plainSites = append(plainSites, routeSites(hosts, onPlain)...)
	}
	if secure, err = route.New(secureSites); err != nil {
		return nil, nil, err
	}
	if plain, err = route.New(plainSites); err != nil {
		return nil, nil, err
	}
	return secure, plain, nil
}

// hstsSites splits a site's hosts by the Strict-Transport-Security value
// each gets, and wraps the handler for those that get one.
func hstsSites(policy config.HSTS, hosts []string, h message.Handler) []route.Site {
	byValue := map[string][]string{}
	var order []string
	for _, host := range hosts {
		v := policy.HeaderFor(host)
		if _, ok := byValue[v]; !ok {
			order = append(order, v)
		}
		byValue[v] = append(byValue[v], host)
	}
	var out []route.Site
	for _, v := range order {
		var handler message.Handler = h
		if v != "" {
			handler = route.WithHeader{Name: "Strict-Transport-Security", Value: v, Handler: h}
		}
		out = append(out, routeSites(byValue[v], handler)...)
	}
	return out
}

// routeSites makes the route sites of some hosts: "*" (any host) becomes
// the default site.
func routeSites(hosts []string, h message.Handler) []route.Site {
	named := slices.DeleteFunc(slices.Clone(hosts), func(host string) bool { return host == "*" })
	var out []route.Site
	if len(named) > 0 {
		out = append(out, route.Site{Hosts: named, Handler: h})
	}
	if len(named) < len(hosts) {
		out = append(out, route.Site{Handler: h})
	}
	return out
}

// buildServers makes the protocol servers over the live routing tables.
func (gw *gateway) buildServers(tlsConfig *tls.Config) {
	c := gw.cfg
	altSvc := h3.AltSvc(gw.httpsPort())
	gw.h2 = gw.h2Server(gw.secure, altSvc)
	gw.h3 = &h3.Server{
		Handler:        gw.secure,
		Observer:       gw.observer(),
		TLSConfig:      tlsConfig,
		IdleTimeout:    c.Timeouts.Idle.Duration,
		MaxHeaderBytes: int(c.Limits.MaxHeaderBytes.Bytes),
		MaxBodyBytes:   c.Limits.MaxBodyBytes.Bytes,
		Logger:         gw.log,

		ConnectionIDTag: gw.quicTag,
	}
	gw.configureH1(gw.h1TLS, gw.secure, altSvc)
	gw.h1TLS.TLSConfig = tlsConfig
	gw.h1TLS.Protocols = map[string]onloop.Protocol{"h2": gw.h2}
	gw.h1TLS.TLSProtocols = map[string]func(*tls.Conn){acmeTLS1: closeACMEConn}
	gw.h1TLS.HandshakeTimeout = c.Timeouts.Handshake.Duration
	plain := route.HTTPChallenge{Solve: gw.certs.HTTPChallenge, Handler: gw.plain}
	gw.configureH1(gw.h1Plain, plain, "")
	gw.h2c = gw.h2Server(plain, "")
	gw.h1Plain.PriorKnowledge = gw.h2c
	gw.h1Plain.DropBehind = c.Files.DropBehind.Bytes // TLS bodies are not sent by sendfile
}

// h2Server makes an HTTP/2 server with the config's timeouts and limits.
func (gw *gateway) h2Server(handler message.Handler, altSvc string) *h2.Server {
	c := gw.cfg
	return &h2.Server{
		Handler:         handler,
		AltSvc:          altSvc,
		IdleTimeout:     c.Timeouts.Idle.Duration,
		WriteTimeout:    c.Timeouts.Write.Duration,
		MaxHeaderBytes:  int(c.Limits.MaxHeaderBytes.Bytes),
		MaxBodyBytes:    c.Limits.MaxBodyBytes.Bytes,
		ExtendedConnect: gw.tunnels.Load,
		Observer:        gw.observer(),
		Logger:          gw.log,
	}
}

// observer is what the protocol servers report exchanges to: nil, which
// costs them nothing, when nothing observes.
func (gw *gateway) observer() message.Observer {
	if len(gw.observers) == 0 {
		return nil
	}
	return gw.observers
}

// configureH1 sets an HTTP/1.1 server's handler, timeouts and limits.
func (gw *gateway) configureH1(s *h1.Server, handler message.Handler, altSvc string) {
	c := gw.cfg
	s.Handler = handler
	s.Observer = gw.observer()
	s.AltSvc = altSvc
	s.ReadHeaderTimeout = c.Timeouts.ReadHeader.Duration
	s.IdleTimeout = c.Timeouts.Idle.Duration
	s.WriteTimeout = c.Timeouts.Write.Duration
	s.MaxHeaderBytes = int(c.Limits.MaxHeaderBytes.Bytes)
	s.MaxHeaderCount = c.Limits.MaxHeaderCount.N
	s.MaxBodyBytes = c.Limits.MaxBodyBytes.Bytes
	s.Logger = gw.log
}

// start runs the event loops of both TCP ports and serves HTTP/3 in a
// goroutine. The channel gets a failure that comes later; a stop by
// shutdown is not a failure.
func (gw *gateway) start() (<-chan error, error) {
	if err := gw.h1TLS.Start(); err != nil {
		return nil, fmt.Errorf("https: %w", err)
	}
	if err := gw.h1Plain.Start(); err != nil {
		return nil, fmt.Errorf("http: %w", err)
	}
	if err := gw.startAdmin(); err != nil {
		return nil, err
	}
	failed := make(chan error, 1)
	go func() { // exits when the HTTP/3 server stops
		if err := gw.h3.Serve(gw.udp); err != nil && !isClosedError(err) {
			failed <- fmt.Errorf("http/3: %w", err)
		}
	}()
	return failed, nil
}

// isClosedError reports whether err only says that a listener was closed
// on purpose.
func isClosedError(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, h1.ErrServerClosed) || errors.Is(err, h3.ErrServerClosed)
}

// shutdown stops accepting, lets in-flight requests finish within the
// drain timeout, then closes what is left.
func (gw *gateway) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), gw.drainTimeout())
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i, stop := range []func(context.Context) error{
		gw.h1Plain.Shutdown, gw.h1TLS.Shutdown, gw.h3.Shutdown, gw.shutdownAdmin,
	} {
		wg.Go(func() { errs[i] = stop(ctx) })
	}
	wg.Wait()
	gw.closeAll()
	if err := errors.Join(errs...); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// closeAll closes whatever is open, ignoring errors: it is the last step.
func (gw *gateway) closeAll() {
	for _, s := range []*h1.Server{gw.h1TLS, gw.h1Plain} {
		if s != nil {
			_ = s.Close() // the listening sockets, if the loops never started
		}
	}
	if gw.udp != nil {
		_ = gw.udp.Close()
	}
	gw.handlers.close()
	gw.closeAdmin()
	if gw.certs != nil {
		gw.certs.Close()
	}
	gw.access.close() // after the servers: their last lines are written
}

func (gw *gateway) httpsAddr() string { return gw.h1TLS.Addr().String() }
func (gw *gateway) httpAddr() string  { return gw.h1Plain.Addr().String() }
func (gw *gateway) httpsPort() int    { return gw.h1TLS.Addr().(*net.TCPAddr).Port }
func (gw *gateway) httpPort() int     { return gw.h1Plain.Addr().(*net.TCPAddr).Port }

// hostOf returns the host part of a host:port address.
func hostOf(addr string) string {
	host, _, _ := net.SplitHostPort(addr)
	return host
}

// hostPort writes host:port for a URL, leaving out the scheme's default
// port and bracketing IPv6.
func hostPort(host string, port, defaultPort int) string {
	if port == defaultPort {
		if net.ParseIP(host) != nil && net.ParseIP(host).To4() == nil {
			return "[" + host + "]"
		}
		return host
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}
