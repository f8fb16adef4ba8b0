package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/anx-gateway/anx/cmd/anx/internal/config"

	"github.com/anx-gateway/anx/certs"
)

// runFlags are the flags of "anx run".
type runFlags struct {
	config    string
	root      string
	domains   stringList
	proxies   stringList
	https     string
	http      string
	data      string
	httpMode  string
	accessLog string

	acmeCA        string
	acmeCARoot    string
	email         string
	acmeChallenge string

	set map[string]bool // the flags given on the command line
}

// stringList is a flag that may be repeated.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

// Set appends one value.
func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// parseRunFlags parses the flags of "anx run".
func parseRunFlags(args []string, stderr io.Writer) (runFlags, error) {
	var f runFlags
	fs := flag.NewFlagSet("anx run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.config, "config", "", "read sites and settings from this TOML `file`")
	fs.StringVar(&f.root, "root", "", "serve files from this `dir` (default: the current directory)")
	fs.Var(&f.proxies, "proxy", "forward the site's requests to this upstream `URL` (http://, https://, h2c:// or unix:/path.sock); repeat for a pool. With --root, files under it first, else the proxy")
	fs.Var(&f.domains, "domain", "serve the site under this host `name`; repeat for more (default: localhost)")
	fs.StringVar(&f.https, "https", "", "listen for HTTPS (TCP) and HTTP/3 (UDP) on this `addr` (default \":8443\")")
	fs.StringVar(&f.http, "http", "", "listen for plain HTTP on this `addr` (default \":8080\")")
	fs.StringVar(&f.data, "data", "", "keep certificates and the local CA in this `dir` (default $XDG_DATA_HOME/anx or ~/.local/share/anx)")
	fs.StringVar(&f.httpMode, "http-mode", "", "what plain HTTP does: redirect to HTTPS, or serve the site (`mode`: redirect|serve; default redirect)")
	fs.StringVar(&f.acmeCA, "acme-ca", "", "get certificates from the ACME CA with this directory `URL` (default Let's Encrypt); it then also serves internal names such as *.test")
	fs.StringVar(&f.acmeCARoot, "acme-ca-root", "", "trust the root certificates in this PEM `file` for the ACME CA's API (a private CA)")
	fs.StringVar(&f.email, "email", "", "the ACME account's contact `address` (optional)")
	fs.StringVar(&f.accessLog, "access-log", "", "log every site's requests to `dest`: stderr, off, or a file's path (default: each site's access_log, else stderr)")
	fs.StringVar(&f.acmeChallenge, "acme-challenge", "", "answer only this ACME `challenge`: http-01 or tls-alpn-01 (default: both, one after the other)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: anx run [flags]\n\n")
		fs.PrintDefaults()
		fmt.Fprint(stderr, runHelpTail)
	}
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, usageError{fmt.Sprintf("anx run takes no arguments, got %q", fs.Arg(0))}
	}
	f.set = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	return f, nil
}

// runHelpTail ends "anx run --help": how the flags combine with the
// config file.
const runHelpTail = `
A flag wins over the config file: --https, --http, --data and the --acme-* and
--email flags replace the file's values; --access-log applies to every site;
--root, --domain, --http-mode and --proxy apply to its only site (a file with
several sites is an error).

--proxy URL (repeatable) gives the site a catch-all route "/" to those
upstreams, tried after the file's own routes:
  anx run --domain example.com --proxy http://127.0.0.1:3000
      every request goes to the app; nothing is served from the current
      directory (without --root, there is no default root).
  anx run --domain example.com --root ./public --proxy http://127.0.0.1:3000
      a file that exists under ./public is served, every other request
      goes to the app.
  anx run --config anx.toml --proxy http://127.0.0.1:3000
      the file's routes first, then the proxy; the site's root from the
      file (if any) is tried before the proxy, as --root would be.
`

// loadRunConfig builds the config that "anx run" serves: defaults, then
// the file, then the flags.
func loadRunConfig(f runFlags) (config.Config, error) {
	cfg := config.Default()
	if f.config != "" {
		var err error
		if cfg, err = config.Load(f.config); err != nil {
			return config.Config{}, err
		}
	}
	if err := applyFlags(&cfg, f); err != nil {
		return config.Config{}, err
	}
	return cfg, cfg.Validate()
}

// applyFlags lays the flags given on the command line over cfg.
func applyFlags(cfg *config.Config, f runFlags) error {
	if f.set["https"] {
		cfg.HTTPS = f.https
	}
	if f.set["http"] {
		cfg.HTTP = f.http
	}
	if f.set["data"] {
		cfg.Data = f.data
	}
	if err := applyACMEFlags(cfg, f); err != nil {
		return err
	}
	if f.set["access-log"] {
		if err := applyAccessLogFlag(cfg, f.accessLog); err != nil {
			return err
		}
	}
	if !f.set["root"] && !f.set["domain"] && !f.set["http-mode"] && !f.set["proxy"] {
		return nil
	}
	if len(cfg.Sites) != 1 {
		return usageError{fmt.Sprintf("--root, --domain, --http-mode and --proxy describe one site, but %s declares %d", f.config, len(cfg.Sites))}
	}
	site := &cfg.Sites[0]
	if f.set["root"] {
		site.Root = f.root
	}
	if f.set["domain"] {
		site.Hosts = f.domains
	}
	if f.set["http-mode"] {
		if err := site.HTTPMode.UnmarshalText([]byte(f.httpMode)); err != nil {
			return usageError{"--http-mode: " + err.Error()}
		}
	}
	if f.set["proxy"] {
		return applyProxyFlags(site, f)
	}
	return nil
}

// applyAccessLogFlag sends every site's access log to dest.
func applyAccessLogFlag(cfg *config.Config, dest string) error {
	var a config.AccessLog
	if err := a.UnmarshalText([]byte(dest)); err != nil {
		return usageError{"--access-log: " + err.Error()}
	}
	for i := range cfg.Sites {
		cfg.Sites[i].AccessLog = a
	}
	return nil
}

// applyProxyFlags gives the site a catch-all route to the --proxy
// upstreams, after its own routes. The site's root (from --root or the
// file; the built-in default "." does not count) moves into that route:
// files under it first, else the proxy.
func applyProxyFlags(site *config.Site, f runFlags) error {
	r := config.Route{Path: "/"}
	for _, u := range f.proxies {
		var up config.Upstream
		if err := up.UnmarshalText([]byte(u)); err != nil {
			return usageError{"--proxy: " + err.Error()}
		}
		r.Proxy = append(r.Proxy, up)
	}
	if f.set["root"] || f.config != "" {
		r.Root = site.Root
	}
	site.Root = ""
	site.Routes = append(site.Routes, r)
	return nil
}

// applyACMEFlags lays the ACME flags over cfg, checked as the config
// file's keys are.
func applyACMEFlags(cfg *config.Config, f runFlags) error {
	if f.set["acme-ca"] {
		if err := certs.CheckURL(f.acmeCA); err != nil {
			return usageError{"--acme-ca: " + err.Error()}
		}
		cfg.ACMECA.URL = f.acmeCA
	}
	if f.set["acme-ca-root"] {
		cfg.ACMECARoot = f.acmeCARoot
	}
	if f.set["email"] {
		cfg.Email = f.email
	}
	if f.set["acme-challenge"] {
		if err := cfg.ACMEChallenge.UnmarshalText([]byte(f.acmeChallenge)); err != nil {
			return usageError{"--acme-challenge: " + err.Error()}
		}
	}
	return nil
}
