package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/anx-gateway/anx/h3"
)

// upgradeEnv names, in the environment of an anx started by a binary
// upgrade (SIGUSR2, see upgrade.go), what it inherits from the old
// process, as systemd's LISTEN_FDS and nginx's NGINX variable do:
// "https=3,4 http=5,6 udp=7 ready=8 quic=1a2b3c4d parent=1234" (the
// listening sockets of the HTTPS and plain-HTTP ports, one per event
// loop; the UDP socket of HTTP/3, for its address; the pipe on which it
// tells the old process that it serves; the tag of its HTTP/3 connection
// IDs, in hex, by which the old process steers the port's packets; the
// old process's pid).
const upgradeEnv = "ANX_UPGRADE_FDS"

// inherited is what a new process gets from the old one in a binary
// upgrade. Owned by the main goroutine; nil methods do nothing, so that a
// process started otherwise goes the same way.
type inherited struct {
	https, http []int    // listening TCP sockets, one per event loop
	udp         int      // the old process's HTTP/3 socket
	readyFd     int      // the old process's pipe
	quicTag     uint32   // h3.Server.ConnectionIDTag
	parent      int      // the old process's pid
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
	in := &inherited{}
	for field := range strings.FieldsSeq(spec) {
		name, value, ok := strings.Cut(field, "=")
		var err error
		switch {
		case !ok:
			err = fmt.Errorf("%q is not name=value", field)
		case name == "quic":
			in.quicTag, err = parseTag(value)
		case name == "parent":
			in.parent, err = strconv.Atoi(value)
			if err != nil || in.parent <= 0 {
				err = fmt.Errorf("parent: bad pid %q", value)
			}
		default:
			fds[name], err = parseDescriptors(name, value)
		}
		if err != nil {
			return nil, err
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
	if in.quicTag == 0 || in.parent == 0 {
		return nil, errors.New("no quic tag or no parent pid")
	}
	in.https, in.http, in.udp, in.readyFd = fds["https"], fds["http"], fds["udp"][0], fds["ready"][0]
	return in, nil
}

// parseDescriptors parses a comma-separated list of descriptors, each 3
// or more.
func parseDescriptors(name, list string) ([]int, error) {
	var fds []int
	for n := range strings.SplitSeq(list, ",") {
		fd, err := strconv.Atoi(n)
		if err != nil || fd < 3 {
			return nil, fmt.Errorf("%s: bad descriptor %q", name, n)
		}
		fds = append(fds, fd)
	}
	return fds, nil
}

// parseTag parses a connection-ID tag: hex, not zero.
func parseTag(s string) (uint32, error) {
	tag, err := strconv.ParseUint(s, 16, 32)
	if err != nil || tag == 0 {
		return 0, fmt.Errorf("quic: bad tag %q", s)
	}
	return uint32(tag), nil
}

// formatTag is the form of a tag in upgradeEnv.
func formatTag(tag uint32) string { return strconv.FormatUint(uint64(tag), 16) }

// connectionIDTag is the tag of this process's HTTP/3 connection IDs: the
// one the old process chose and steers by, or a new one.
func (in *inherited) connectionIDTag() uint32 {
	if in == nil {
		return h3.NewConnectionIDTag()
	}
	return in.quicTag
}

// predecessorRunning reports whether the old process that started this
// one still runs (it is this process's parent until it exits).
func (in *inherited) predecessorRunning() bool {
	return in != nil && os.Getppid() == in.parent
}

// listen serves the inherited sockets instead of binding new ones.
func (in *inherited) listen(gw *gateway) error {
	if err := gw.h1TLS.ListenFDs(in.https); err != nil {
		return fmt.Errorf("inherited https sockets: %w", err)
	}
	addr, err := packetConnAddr(in.udp)
	if err != nil {
		return fmt.Errorf("inherited udp socket: %w", err)
	}
	// A socket of its own on the old one's port, which the old process
	// has steered (h3.SteerToSuccessor): each process reads the packets of
	// its own connections.
	if gw.udp, err = h3.ListenPacket(context.Background(), addr); err != nil {
		return listenError("https (UDP, HTTP/3) beside the old process", addr, err)
	}
	if err := gw.h1Plain.ListenFDs(in.http); err != nil {
		return fmt.Errorf("inherited http sockets: %w", err)
	}
	return nil
}

// packetConnAddr is the local address of the UDP socket fd, which it
// closes.
func packetConnAddr(fd int) (string, error) {
	f := os.NewFile(uintptr(fd), "udp")
	defer f.Close()
	pc, err := net.FilePacketConn(f) // a copy of the descriptor
	if err != nil {
		return "", err
	}
	defer pc.Close()
	return pc.LocalAddr().String(), nil
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
