package certs

import (
	"strings"
	"testing"
)

func TestTrustInstructions(t *testing.T) {
	tests := []struct {
		path   string
		quoted string
		json   string
	}{
		{"/var/lib/anx/ca/root.pem", "/var/lib/anx/ca/root.pem", `"/var/lib/anx/ca/root.pem"`},
		{"/home/a b/it's/root.pem", `'/home/a b/it'\''s/root.pem'`, `"/home/a b/it's/root.pem"`},
	}
	for _, tt := range tests {
		got := TrustInstructions(tt.path)
		for _, want := range []string{
			"curl --cacert " + tt.quoted + " https://localhost/",
			"cp " + tt.quoted + " /usr/local/share/ca-certificates/anx-root.crt && update-ca-certificates",
			"Settings → Privacy & Security → Certificates → View Certificates → Authorities → Import",
			`{"policies":{"Certificates":{"Install":[` + tt.json + `]}}}`,
			"certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n anx -i " + tt.quoted,
		} {
			if !strings.Contains(got, want) {
				t.Errorf("path %q: instructions lack %q; got:\n%s", tt.path, want, got)
			}
		}
	}
}

func TestShellQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/a/b.pem", "/a/b.pem"},
		{"", "''"},
		{"a b", "'a b'"},
		{"$HOME", "'$HOME'"},
		{"it's", `'it'\''s'`},
	}
	for _, tt := range tests {
		if got := shellQuote(tt.in); got != tt.want {
			t.Errorf("shellQuote(%q) got %q, want %q", tt.in, got, tt.want)
		}
	}
}
