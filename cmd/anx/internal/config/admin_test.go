package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAdminAddress(t *testing.T) {
	site := "\n[[site]]\nhosts = [\"localhost\"]\nroot = \".\"\n"
	for _, tc := range []struct {
		name, toml, wantErr string
		wantAddr            string
	}{
		{name: "off by default", toml: site},
		{name: "loopback v4", toml: "admin = \"127.0.0.1:2019\"\n" + site, wantAddr: "127.0.0.1:2019"},
		{name: "loopback v6", toml: "admin = \"[::1]:2019\"\n" + site, wantAddr: "[::1]:2019"},
		{name: "localhost", toml: "admin = \"localhost:2019\"\n" + site, wantAddr: "localhost:2019"},
		{name: "every address refused", toml: "http = \":8080\"\n\nadmin = \":2019\"\n" + site,
			wantErr: `anx.toml:3: key "admin": ":2019" is not a loopback address`},
		{name: "public address refused", toml: "admin = \"192.0.2.1:2019\"\n" + site,
			wantErr: `anx.toml:1: key "admin": "192.0.2.1:2019" is not a loopback address`},
		{name: "remote allowed", toml: "admin = \"0.0.0.0:2019\"\nadmin_allow_remote = true\n" + site, wantAddr: "0.0.0.0:2019"},
		{name: "no port", toml: "\nadmin = \"127.0.0.1\"\n" + site, wantErr: `anx.toml:2: key "admin": want host:port`},
		{name: "not a string", toml: "admin = 2019\n" + site, wantErr: `anx.toml:1: key "admin"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "anx.toml")
			if err := os.WriteFile(path, []byte(tc.toml), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := Load(path)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Load: error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if cfg.Admin.Addr != tc.wantAddr {
				t.Errorf("admin = %q, want %q", cfg.Admin.Addr, tc.wantAddr)
			}
		})
	}
}

func TestValidateRefusesRemoteAdmin(t *testing.T) {
	cfg := Default()
	cfg.Admin.Addr = "10.0.0.1:2019"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Errorf("Validate: %v, want a refusal of the non-loopback admin address", err)
	}
	cfg.AdminAllowRemote = true
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate with admin_allow_remote: %v", err)
	}
}
