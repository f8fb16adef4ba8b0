package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/anx-gateway/anx/cmd/anx/internal/config"

	"github.com/anx-gateway/anx/certs"
)

// runValidate checks a config file the way "anx run" would load it,
// without opening listeners, and says what it found.
func runValidate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("anx validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "the TOML config `file` to check")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" {
		return usageError{"anx validate needs --config FILE"}
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%s: %w", *path, err)
	}
	if err := checkRoots(cfg); err != nil {
		return fmt.Errorf("%s: %w", *path, err)
	}
	routes, proxied := 0, 0
	for _, site := range cfg.Sites {
		for _, r := range site.Routes {
			routes++
			if strings.Contains(r.Kind(), "proxy") {
				proxied++
			}
		}
	}
	fmt.Fprintf(stdout, "%s: ok: %d site(s), %d route(s) (%d proxied), https %s, http %s\n", *path, len(cfg.Sites), routes, proxied, cfg.HTTPS, cfg.HTTP)
	return nil
}

// runCA opens (creating on first use) the local CA and prints where its
// root is and how to trust it.
func runCA(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("anx ca", flag.ContinueOnError)
	fs.SetOutput(stderr)
	d := addDataFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := d.load()
	if err != nil {
		return err
	}
	ca, err := certs.OpenCA(cfg.Data)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, ca.RootPath())
	fmt.Fprintln(stdout)
	fmt.Fprint(stdout, certs.TrustInstructions(ca.RootPath()))
	return nil
}

// runCerts lists the certificates kept in the data dir: names, issuer,
// expiry, next renewal and the last issuance error.
func runCerts(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("anx certs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	d := addDataFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := d.load()
	if err != nil {
		return err
	}
	list, err := certs.List(cfg.Data, cfg.RenewalWindowRatio.F)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if list == nil {
			list = []certs.Status{} // [], not null
		}
		return enc.Encode(list)
	}
	printCerts(stdout, cfg.Data, list)
	return nil
}

// printCerts writes the certificate list as a table.
func printCerts(w io.Writer, dir string, list []certs.Status) {
	if len(list) == 0 {
		fmt.Fprintf(w, "no certificates in %s\n", dir)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMES\tISSUER\tNOT AFTER\tRENEWS\tLAST ERROR")
	for _, s := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", strings.Join(s.Names, ","), orDash(s.Issuer),
			formatTime(s.NotAfter), formatTime(s.RenewAt), lastError(s))
	}
	tw.Flush()
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339)
}

func lastError(s certs.Status) string {
	if s.LastError == "" {
		return "-"
	}
	return s.LastErrorAt.Format(time.RFC3339) + " " + s.LastError
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// dataFlags are the flags of commands that read the data dir: --config
// (for its data dir and settings) and --data, which wins.
type dataFlags struct {
	config, data *string
}

func addDataFlags(fs *flag.FlagSet) dataFlags {
	return dataFlags{
		config: fs.String("config", "", "take the data dir from this config `file`"),
		data:   fs.String("data", "", "the data `dir` (default $XDG_DATA_HOME/anx or ~/.local/share/anx)"),
	}
}

// load returns the config the flags name: the file's, or the defaults,
// with --data over it.
func (d dataFlags) load() (config.Config, error) {
	cfg := config.Default()
	if *d.config != "" {
		var err error
		if cfg, err = config.Load(*d.config); err != nil {
			return config.Config{}, err
		}
	}
	if *d.data != "" {
		cfg.Data = *d.data
	}
	return cfg, nil
}

// versionString reports the module version and VCS revision the binary
// was built from.
func versionString() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "anx (unknown version)"
	}
	v := "anx " + info.Main.Version
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v += " " + s.Value
		case "vcs.modified":
			if s.Value == "true" {
				v += "+dirty"
			}
		}
	}
	return v + " " + info.GoVersion
}
