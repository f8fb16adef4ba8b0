package terminate

import (
	"crypto/tls"
	"slices"
	"strings"
	"testing"
)

func TestTLSConfigZeroValue(t *testing.T) {
	var c Config
	got := c.TLSConfig()
	if got.MinVersion != tls.VersionTLS12 || got.MaxVersion != 0 {
		t.Errorf("versions got min %#x max %#x, want min TLS 1.2, max unset (1.3)", got.MinVersion, got.MaxVersion)
	}
	if want := []string{"h2", "http/1.1"}; !slices.Equal(got.NextProtos, want) {
		t.Errorf("NextProtos got %q, want %q", got.NextProtos, want)
	}
	if want := []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256}; !slices.Equal(got.CurvePreferences, want) {
		t.Errorf("CurvePreferences got %v, want %v", got.CurvePreferences, want)
	}
	if got.SessionTicketsDisabled {
		t.Error("session tickets disabled")
	}
	if got.GetCertificate != nil {
		t.Error("zero Config has a GetCertificate")
	}
}

// TestTLSConfigCipherSuites checks that every TLS 1.2 suite is ECDHE with
// an AEAD, and that all six such suites are there.
func TestTLSConfigCipherSuites(t *testing.T) {
	suites := (&Config{}).TLSConfig().CipherSuites
	byID := make(map[uint16]*tls.CipherSuite)
	for _, s := range tls.CipherSuites() {
		byID[s.ID] = s
	}
	for _, id := range suites {
		s, ok := byID[id]
		if !ok {
			t.Errorf("suite %s is insecure or unknown", tls.CipherSuiteName(id))
			continue
		}
		name := s.Name
		ecdhe := strings.HasPrefix(name, "TLS_ECDHE_")
		aead := strings.Contains(name, "_GCM_") || strings.Contains(name, "_CHACHA20_POLY1305")
		if !ecdhe || !aead || !slices.Contains(s.SupportedVersions, tls.VersionTLS12) {
			t.Errorf("suite %s is not an ECDHE AEAD TLS 1.2 suite", name)
		}
	}
	if len(suites) != 6 {
		t.Errorf("got %d suites, want 6", len(suites))
	}
}

func TestTLSConfigNextProtos(t *testing.T) {
	c := Config{NextProtos: []string{"http/1.1"}}
	got := c.TLSConfig()
	if !slices.Equal(got.NextProtos, []string{"http/1.1"}) {
		t.Errorf("NextProtos got %q, want [http/1.1]", got.NextProtos)
	}
	got.NextProtos[0] = "changed"
	if c.NextProtos[0] != "http/1.1" {
		t.Error("TLSConfig shares NextProtos with the Config")
	}
	a, b := (&Config{}).TLSConfig(), (&Config{}).TLSConfig()
	a.NextProtos[0] = "changed"
	if b.NextProtos[0] != "h2" {
		t.Error("two tls.Configs share the default NextProtos")
	}
}

func TestConfigValidate(t *testing.T) {
	getCert := func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, nil }
	long := string(make([]byte, 256))
	tests := []struct {
		name string
		c    Config
		ok   bool
	}{
		{"zero", Config{}, false},
		{"cert", Config{GetCertificate: getCert}, true},
		{"protos", Config{GetCertificate: getCert, NextProtos: []string{"http/1.1", "acme-tls/1"}}, true},
		{"empty proto", Config{GetCertificate: getCert, NextProtos: []string{""}}, false},
		{"long proto", Config{GetCertificate: getCert, NextProtos: []string{long}}, false},
		{"duplicate", Config{GetCertificate: getCert, NextProtos: []string{"h2", "h2"}}, false},
	}
	for _, tt := range tests {
		if err := tt.c.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate got %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}
