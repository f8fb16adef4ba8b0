package certs

import (
	"crypto/tls"
	"testing"
)

// BenchmarkGetCertificate measures the per-handshake cost of picking the
// certificate for an SNI name through the policy and certmagic's cache.
func BenchmarkGetCertificate(b *testing.B) {
	m, err := Open(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	if err := m.Apply(Policy{Sites: []Site{{Names: []string{"localhost", "a.internal", "b.internal"}}}}); err != nil {
		b.Fatal(err)
	}
	hello := &tls.ClientHelloInfo{ServerName: "a.internal", SupportedProtos: []string{"h2", "http/1.1"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.GetCertificate(hello); err != nil {
			b.Fatal(err)
		}
	}
}
