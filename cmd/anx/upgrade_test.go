package main

import (
	"slices"
	"strings"
	"testing"
)

// TestParseInherited: ANX_UPGRADE_FDS names each descriptor a new process
// inherits; a malformed value is refused with what is wrong.
func TestParseInherited(t *testing.T) {
	in, err := parseInherited("https=3,4 http=5,6 udp=7 ready=8")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(in.https, []int{3, 4}) || !slices.Equal(in.http, []int{5, 6}) || in.udp != 7 || in.readyFd != 8 {
		t.Errorf("got https %v http %v udp %d ready %d, want [3 4] [5 6] 7 8", in.https, in.http, in.udp, in.readyFd)
	}
	for _, tc := range []struct{ spec, want string }{
		{"https=3 http=4 udp=5", "no ready descriptor"},
		{"https=3 http=4 udp=5,6 ready=7", "one descriptor each"},
		{"https=x http=4 udp=5 ready=6", `https: bad descriptor "x"`},
		{"https=1 http=4 udp=5 ready=6", `https: bad descriptor "1"`},
		{"https http=4 udp=5 ready=6", "not name=fds"},
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
