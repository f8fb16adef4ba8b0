package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/anx-gateway/anx/cmd/anx/internal/config"

	"github.com/anx-gateway/anx/certs"
)

// runServe is "anx run": load the config, open every listener, serve
// until SIGTERM or SIGINT, then drain. SIGHUP reloads the config.
func runServe(args []string, stdout, stderr io.Writer) (err error) {
	in, err := takeInherited() // set when a binary upgrade started this process
	if err != nil {
		return err
	}
	defer func() { in.tellFailed(err) }() // a no-op once ready was told
	f, err := parseRunFlags(args, stderr)
	if err != nil {
		return err
	}
	cfg, err := loadServeConfig(f)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	gw, err := openGateway(cfg, logger, in)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup, usr1, usr2 := make(chan os.Signal, 1), make(chan os.Signal, 1), make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	signal.Notify(usr1, syscall.SIGUSR1)
	signal.Notify(usr2, syscall.SIGUSR2)
	defer signal.Stop(hup)
	defer signal.Stop(usr1)
	defer signal.Stop(usr2)
	failed, err := gw.start()
	if err != nil {
		gw.shutdown()
		return err
	}
	printBanner(stdout, gw)
	logger.Info("ready", "https", gw.httpsAddr(), "http", gw.httpAddr(), "data", cfg.Data, "pid", os.Getpid())
	in.tellReady()
	err = serveUntilStopped(ctx, gw, f, signals{hup: hup, usr1: usr1, usr2: usr2}, failed)
	stop() // a second signal now kills at once
	err = errors.Join(err, gw.shutdown())
	logger.Info("stopped")
	return err
}

// signals are the signals that act on a running anx without stopping it.
type signals struct {
	hup  <-chan os.Signal // reload the config
	usr1 <-chan os.Signal // reopen the access log files (accesslog.go)
	usr2 <-chan os.Signal // binary upgrade (upgrade.go)
}

// serveUntilStopped reloads on each SIGHUP until a stop signal, a
// listener failure, or a binary upgrade (SIGUSR2) whose new process
// serves.
func serveUntilStopped(ctx context.Context, gw *gateway, f runFlags, sig signals, failed <-chan error) error {
	for {
		select {
		case <-ctx.Done():
			gw.log.Info("stopping", "drain", gw.drainTimeout())
			return nil
		case err := <-failed:
			gw.log.Error("a listener failed; stopping", "err", err)
			return err
		case <-sig.hup:
			reload(gw, f)
		case <-sig.usr1:
			gw.access.reopen()
		case <-sig.usr2:
			if gw.handOver(ctx) {
				return nil
			}
		}
	}
}

// reload loads the config again (file, then flags) and serves it; a bad
// config is logged and the running one keeps serving.
func reload(gw *gateway, f runFlags) {
	cfg, err := loadServeConfig(f)
	if err == nil {
		err = gw.reload(cfg)
	}
	if err != nil {
		gw.log.Error("reload failed", "err", err)
		return
	}
	gw.log.Info("reloaded", "sites", len(cfg.Sites))
}

// loadServeConfig is the config "anx run" serves, with every site's root
// checked.
func loadServeConfig(f runFlags) (config.Config, error) {
	cfg, err := loadRunConfig(f)
	if err != nil {
		return config.Config{}, err
	}
	return cfg, checkRoots(cfg)
}

// checkRoots makes sure every root, of a site or of a route, is a
// directory, so that a typo is one clear line at start-up rather than
// 404s later.
func checkRoots(cfg config.Config) error {
	for i := range cfg.Sites {
		s := &cfg.Sites[i]
		where := fmt.Sprintf("site %d (%s)", i+1, siteName(s))
		if err := checkRoot(where, s.Root); err != nil {
			return err
		}
		for _, r := range s.Routes {
			if err := checkRoot(fmt.Sprintf("%s, route %q", where, r.Path), r.Root); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkRoot checks one root; an empty one (none) is fine.
func checkRoot(where, dir string) error {
	if dir == "" {
		return nil
	}
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%s: root %s: no such directory", where, dir)
	case err != nil:
		return fmt.Errorf("%s: root: %w", where, err)
	case !st.IsDir():
		return fmt.Errorf("%s: root %s: not a directory", where, dir)
	}
	return nil
}

// printBanner tells the person who started anx where it serves and how to
// trust its certificates.
func printBanner(w io.Writer, gw *gateway) {
	https, http := gw.httpsPort(), gw.httpPort()
	fmt.Fprintf(w, "anx is serving:\n")
	for _, s := range gw.cfg.Sites {
		host := s.Hosts[0]
		fmt.Fprintf(w, "  https://%s  (HTTP/1.1, HTTP/2, HTTP/3)\n", hostPort(host, https, 443))
		mode := "redirects to HTTPS"
		if s.HTTPMode == config.HTTPServe {
			mode = "serves the site"
		}
		fmt.Fprintf(w, "  http://%s   (%s)\n", hostPort(host, http, 80), mode)
	}
	root := gw.certs.CA().RootPath()
	ca := gw.cfg.ACMECA.URL
	if ca == "" {
		ca = certs.LetsEncrypt
	}
	fmt.Fprintf(w, "Certificates of public names come from the ACME CA %s\n", ca)
	if gw.cfg.ACMECA.URL != "" {
		fmt.Fprintf(w, "  (which also serves internal names such as *.test, as acme_ca is set)\n")
	}
	fmt.Fprintf(w, "Certificates of localhost, IP addresses and internal names come from anx's local CA: %s\n", root)
	fmt.Fprintf(w, "  trust it with curl:  curl --cacert %s https://%s/\n", root, hostPort(gw.cfg.Sites[0].Hosts[0], https, 443))
	fmt.Fprintf(w, "  system and browsers: run \"anx ca --data %s\"\n", gw.cfg.Data)
	fmt.Fprintf(w, "Managed certificates: anx certs --data %s\n", gw.cfg.Data)
}

// drainTimeout bounds a graceful stop.
func (gw *gateway) drainTimeout() time.Duration {
	if d := gw.cfg.Timeouts.Drain.Duration; d > 0 {
		return d
	}
	return config.Default().Timeouts.Drain.Duration
}
