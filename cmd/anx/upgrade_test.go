package main

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// TestParseInherited: ANX_UPGRADE_FDS names each descriptor a new process
// inherits; a malformed value is refused with what is wrong.
func TestParseInherited(t *testing.T) {
	in, err := parseInherited("https=3,4 http=5,6 udp=7 ready=8 quic=1a2b3c4d parent=1234")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(in.https, []int{3, 4}) || !slices.Equal(in.http, []int{5, 6}) || in.udp != 7 || in.readyFd != 8 ||
		in.quicTag != 0x1a2b3c4d || in.parent != 1234 {
		t.Errorf("got https %v http %v udp %d ready %d quic %x parent %d, want [3 4] [5 6] 7 8 1a2b3c4d 1234",
			in.https, in.http, in.udp, in.readyFd, in.quicTag, in.parent)
	}
	for _, tc := range []struct{ spec, want string }{
		{"https=3 http=4 udp=5 quic=1 parent=2", "no ready descriptor"},
		{"https=3 http=4 udp=5,6 ready=7 quic=1 parent=2", "one descriptor each"},
		{"https=x http=4 udp=5 ready=6 quic=1 parent=2", `https: bad descriptor "x"`},
		{"https=1 http=4 udp=5 ready=6 quic=1 parent=2", `https: bad descriptor "1"`},
		{"https http=4 udp=5 ready=6 quic=1 parent=2", "not name=value"},
		{"https=3 http=4 udp=5 ready=6 quic=0 parent=2", `quic: bad tag "0"`},
		{"https=3 http=4 udp=5 ready=6 quic=xyz parent=2", `quic: bad tag "xyz"`},
		{"https=3 http=4 udp=5 ready=6 quic=1 parent=-2", `parent: bad pid "-2"`},
		{"https=3 http=4 udp=5 ready=6 parent=2", "no quic tag"},
	} {
		_, err := parseInherited(tc.spec)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseInherited(%q): %v, want an error with %q", tc.spec, err, tc.want)
		}
	}
}

// TestTakeInherited: a bad ANX_UPGRADE_FDS is an error and is taken out
// of the environment; without it a process inherits nothing, and telling
// the nil inheritance does nothing.
func TestTakeInherited(t *testing.T) {
	t.Setenv(upgradeEnv, "")
	if in, err := takeInherited(); err == nil {
		t.Errorf("takeInherited with an empty %s: %+v, want an error", upgradeEnv, in)
	}
	in, err := takeInherited()
	if in != nil || err != nil {
		t.Errorf("takeInherited once the variable is gone: %+v, %v; want nil, nil", in, err)
	}
	var none *inherited
	none.tellReady()
	none.tellFailed(nil)
}

// TestPredecessorRunning: a process started by an upgrade knows its old
// process runs while that is its parent; one started otherwise has none.
func TestPredecessorRunning(t *testing.T) {
	if !(&inherited{parent: os.Getppid()}).predecessorRunning() {
		t.Error("the parent is the old process, yet it does not run")
	}
	if (&inherited{parent: os.Getppid() + 1}).predecessorRunning() {
		t.Error("the old process is not the parent (it exited), yet it runs")
	}
	var none *inherited
	if none.predecessorRunning() {
		t.Error("a process not started by an upgrade has an old process")
	}
}
