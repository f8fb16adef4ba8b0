// Command anx is an HTTPS gateway: it serves sites over HTTP/1.1, HTTP/2
// and HTTP/3 with automatic certificates, from one binary.
//
// Usage:
//
//	anx run [--config FILE] [--root DIR] [--proxy URL]... [--domain NAME]... [--https ADDR]
//	        [--http ADDR] [--data DIR] [--http-mode redirect|serve]
//	        [--acme-ca URL] [--acme-ca-root FILE] [--email ADDR]
//	        [--acme-challenge http-01|tls-alpn-01]
//	anx validate --config FILE
//	anx ca [--config FILE] [--data DIR]
//	anx certs [--config FILE] [--data DIR] [--json]
//	anx doctor [--config FILE] [--json]
//	anx version
//
// Run "anx help" or "anx run --help" for the details; README.md has the
// config file reference.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// usage is printed by "anx help" and on a bad command line.
const usage = `anx serves sites over HTTP/1.1, HTTP/2 and HTTP/3 with automatic certificates.

Commands:
  anx run [flags]                 serve (flags below; "anx run --help")
  anx validate --config FILE      check a config file and exit
  anx ca [--data DIR]             print the local CA's root and how to trust it
  anx certs [--data DIR] [--json] list managed certificates: names, issuer, expiry,
                                  next renewal, last error
  anx doctor [--config FILE] [--json]
                                  report the CPU's crypto hardware and what it is
                                  worth, the TLS 1.3 suite preferred, and system
                                  settings that cost speed (ok or warn + fix)
  anx version                     print the version

Flags and the config file: the built-in defaults come first, then the
config file, then the flags; a flag always wins. --https, --http, --data,
--acme-ca, --acme-ca-root, --email and --acme-challenge replace the file's
values; --root, --domain and --http-mode replace those of the file's site,
and --proxy URL (repeatable) gives it a catch-all route to those upstreams
after the file's routes (with a root, files first, else the proxy); the site
flags are only allowed when the file declares one site.
`

// exit codes
const (
	exitOK    = 0
	exitError = 1 // anx could not do what was asked
	exitUsage = 2 // the command line was wrong
)

// run executes one anx command and returns its exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "run":
		err = runServe(args[1:], stdout, stderr)
	case "validate":
		err = runValidate(args[1:], stdout, stderr)
	case "ca":
		err = runCA(args[1:], stdout, stderr)
	case "certs":
		err = runCerts(args[1:], stdout, stderr)
	case "doctor":
		err = runDoctor(args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, versionString())
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "anx: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	return exitCode(err, stderr)
}

// exitCode prints err as one line and maps it to an exit code.
func exitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, new(usageError)):
		fmt.Fprintf(stderr, "anx: %v\n", err)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "anx: %v\n", err)
		return exitError
	}
}

// usageError is a mistake on the command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }
