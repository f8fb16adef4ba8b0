package config

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestAccessLogKeys(t *testing.T) {
	path := writeConfig(t, `
[[site]]
hosts = ["a.test"]
root = "."
access_log = "logs/a.log"
access_log_format = "combined"

[[site]]
hosts = ["b.test"]
root = "."
access_log = "off"

[[site]]
hosts = ["c.test"]
root = "."
access_log = "/var/log/c.log"

[[site]]
hosts = ["d.test"]
root = "."
`)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(path)
	want := []struct {
		dest   string
		format AccessLogFormat
		file   bool
	}{
		{filepath.Join(dir, "logs/a.log"), AccessLogCombined, true},
		{"off", AccessLogJSON, false},
		{"/var/log/c.log", AccessLogJSON, true},
		{"stderr", AccessLogJSON, false},
	}
	for i, w := range want {
		s := cfg.Sites[i]
		if s.AccessLog.Destination() != w.dest || s.AccessLogFormat != w.format || s.AccessLog.IsFile() != w.file {
			t.Errorf("site %d: access_log %q (file %v) format %s, want %q (file %v) %s", i+1,
				s.AccessLog.Destination(), s.AccessLog.IsFile(), s.AccessLogFormat, w.dest, w.file, w.format)
		}
	}
	if d := Default().Sites[0].AccessLog.Destination(); d != "stderr" {
		t.Errorf("the default site logs to %q, want stderr", d)
	}
}

func TestBadAccessLogNamesFileLineAndKey(t *testing.T) {
	for _, c := range []struct{ name, text, want string }{
		{"bad format", "[[site]]\nhosts = [\"a.test\"]\nroot = \".\"\naccess_log_format = \"xml\"\n",
			`:4: key "site.access_log_format": want "json" or "combined", got "xml"`},
		{"empty destination", "[[site]]\nhosts = [\"a.test\"]\n\naccess_log = \"\"\n",
			`:4: key "site.access_log": want "stderr", "off" or a file's path`},
	} {
		_, err := Load(writeConfig(t, c.text))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
}
