package certs

import (
	"encoding/json"
	"strings"
)

// TrustInstructions returns the text `anx ca` prints: how to make curl, the
// Debian system store, Firefox and Chromium on Linux trust the root
// certificate at rootPath (see CA.RootPath).
func TrustInstructions(rootPath string) string {
	p := shellQuote(rootPath)
	policy, _ := json.Marshal(map[string]any{
		"policies": map[string]any{"Certificates": map[string]any{"Install": []string{rootPath}}},
	})
	var b strings.Builder
	b.WriteString("anx's local root certificate is " + rootPath + "\n")
	b.WriteString("Clients trust anx's certificates for local and internal names once they trust it:\n\n")
	b.WriteString("curl:\n")
	b.WriteString("  curl --cacert " + p + " https://localhost/\n\n")
	b.WriteString("Debian and Ubuntu system store (as root; then trusted by curl, wget, Go and OpenSSL programs):\n")
	b.WriteString("  cp " + p + " /usr/local/share/ca-certificates/anx-root.crt && update-ca-certificates\n\n")
	b.WriteString("Firefox (keeps its own store):\n")
	b.WriteString("  Settings → Privacy & Security → Certificates → View Certificates → Authorities → Import,\n")
	b.WriteString("  choose " + rootPath + " and tick \"Trust this CA to identify websites\";\n")
	b.WriteString("  or, for every profile, in /etc/firefox/policies/policies.json:\n")
	b.WriteString("  " + string(policy) + "\n\n")
	b.WriteString("Chromium and Chrome on Linux (NSS store; certutil is in libnss3-tools):\n")
	b.WriteString("  certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n anx -i " + p + "\n")
	return b.String()
}

// shellQuote quotes s for a POSIX shell when it holds anything but
// characters that are safe unquoted.
func shellQuote(s string) string {
	safe := s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("/._-+,:@%=", r))
	}) < 0
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
