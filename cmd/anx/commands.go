package main

import (
	"flag"
	"fmt"
	"io"
	"runtime/debug"

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
	cfg, err := loadConfigFile(*path)
	if err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("%s: %w", *path, err)
	}
	if err := checkRoots(cfg); err != nil {
		return fmt.Errorf("%s: %w", *path, err)
	}
	fmt.Fprintf(stdout, "%s: ok: %d site(s), https %s, http %s\n", *path, len(cfg.Sites), cfg.HTTPS, cfg.HTTP)
	return nil
}

// runCA opens (creating on first use) the local CA and prints where its
// root is and how to trust it.
func runCA(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("anx ca", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "take the data dir from this config `file`")
	data := fs.String("data", "", "the data `dir` (default $XDG_DATA_HOME/anx or ~/.local/share/anx)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir := defaultDataDir()
	if *configPath != "" {
		cfg, err := loadConfigFile(*configPath)
		if err != nil {
			return err
		}
		dir = cfg.Data
	}
	if *data != "" {
		dir = *data
	}
	ca, err := certs.OpenCA(dir)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, ca.RootPath())
	fmt.Fprintln(stdout)
	fmt.Fprint(stdout, certs.TrustInstructions(ca.RootPath()))
	return nil
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
