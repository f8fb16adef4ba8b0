package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// upgradeEnv names, in the environment of an anx started by a binary
// upgrade (SIGUSR2, see upgrade.go), the descriptors it inherits from the
// old process, as systemd's LISTEN_FDS and nginx's NGINX variable do:
// "https=3,4 http=5,6 udp=7 ready=8" (the listening sockets of the HTTPS
// and plain-HTTP ports, one per event loop, the UDP socket of HTTP/3, and
// the pipe on which it tells the old process that it serves).
const upgradeEnv = "ANX_UPGRADE_FDS"

// inherited is what a new process gets from the old one in a binary
// upgrade. Owned by the main goroutine; nil methods do nothing, so that a
// process started otherwise goes the same way.
type inherited struct {
	https, http []int    // listening TCP sockets, one per event loop
	udp         int      // the HTTP/3 socket
	readyFd     int      // the old process's pipe
	ready       *os.File // readyFd, made by takeInherited; nil once told
}

// takeInherited reads upgradeEnv and takes it out of the environment (a
// later upgrade sets its own). It returns nil when this process was not
// started by an upgrade.
func takeInherited() (*inherited, error) {
	spec, ok := os.LookupEnv(upgradeEnv)
	if !ok {
		return nil, nil
	}
	os.Unsetenv(upgradeEnv)
	in, err := parseInherited(spec)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: %w", upgradeEnv, spec, err)
	}
	in.ready = os.NewFile(uintptr(in.readyFd), "upgrade-ready")
	return in, nil
}

// parseInherited parses the value of upgradeEnv.
func parseInherited(spec string) (*inherited, error) {
	fds := map[string][]int{}
	for field := range strings.FieldsSeq(spec) {
		name, list, ok := strings.Cut(field, "=")
		if !ok {
			return nil, fmt.Errorf("%q is not name=fds", field)
		}
		for n := range strings.SplitSeq(list, ",") {
			fd, err := strconv.Atoi(n)
			if err != nil || fd < 3 {
				return nil, fmt.Errorf("%s: bad descriptor %q", name, n)
			}
			fds[name] = append(fds[name], fd)
		}
	}
	for _, name := range []string{"https", "http", "udp", "ready"} {
		if len(fds[name]) == 0 {
			return nil, fmt.Errorf("no %s descriptor", name)
		}
	}
	if len(fds["udp"]) != 1 || len(fds["ready"]) != 1 {
		return nil, errors.New("udp and ready take one descriptor each")
	}
	return &inherited{https: fds["https"], http: fds["http"], udp: fds["udp"][0], readyFd: fds["ready"][0]}, nil
}

// listen serves the inherited sockets instead of binding new ones.
func (in *inherited) listen(gw *gateway) error {
	if err := gw.h1TLS.ListenFDs(in.https); err != nil {
		return fmt.Errorf("inherited https sockets: %w", err)
	}
	f := os.NewFile(uintptr(in.udp), "udp")
	pc, err := net.FilePacketConn(f) // a copy of the descriptor
	f.Close()
	if err != nil {
		return fmt.Errorf("inherited udp socket: %w", err)
	}
	gw.udp = pc
	if err := gw.h1Plain.ListenFDs(in.http); err != nil {
		return fmt.Errorf("inherited http sockets: %w", err)
	}
	return nil
}

// tellReady tells the old process that this one serves, so that it stops
// accepting and drains.
func (in *inherited) tellReady() { in.tell("ready") }

// tellFailed tells the old process why this one could not start, before
// it exits; the old one keeps serving and logs it.
func (in *inherited) tellFailed(err error) {
	if err != nil {
		in.tell("failed: " + strings.ReplaceAll(err.Error(), "\n", " "))
	}
}

// tell writes one line to the old process, once.
func (in *inherited) tell(line string) {
	if in == nil || in.ready == nil {
		return
	}
	_, _ = in.ready.WriteString(line + "\n") // the old process may be gone: nothing to tell then
	in.ready.Close()
	in.ready = nil
}
