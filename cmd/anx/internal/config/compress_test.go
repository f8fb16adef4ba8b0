package config

import (
	"strings"
	"testing"

	"github.com/anx-gateway/anx/core/encode"
)

// A site compresses in zstd, br and gzip unless its compress list says
// otherwise; an empty list turns compression off.
func TestCompressKeys(t *testing.T) {
	path := writeConfig(t, `
[[site]]
hosts = ["a.test"]
root = "."
[[site]]
hosts = ["b.test"]
root = "."
compress = ["gzip", "zstd"]
compress_min_size = "2KiB"
[[site]]
hosts = ["c.test"]
root = "."
compress = []
`)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := &cfg.Sites[0], &cfg.Sites[1], &cfg.Sites[2]
	if a.CompressSet() != encode.DefaultSet || a.CompressMinBytes() != encode.DefaultMinSize {
		t.Errorf("site a: %08b from %d bytes, want every coding from %d", a.CompressSet(), a.CompressMinBytes(), encode.DefaultMinSize)
	}
	want := encode.Set(0).With(encode.Gzip).With(encode.Zstd)
	if b.CompressSet() != want || b.CompressMinBytes() != 2048 {
		t.Errorf("site b: %08b from %d bytes, want %08b from 2048", b.CompressSet(), b.CompressMinBytes(), want)
	}
	if c.CompressSet() != 0 {
		t.Errorf("site c: %08b, want none", c.CompressSet())
	}
}

// A bad compress value names the file, the line and the key.
func TestBadCompress(t *testing.T) {
	site := "[[site]]\nhosts = [\"a.test\"]\nroot = \".\"\n"
	cases := []struct{ name, text, want string }{
		{"unknown coding", site + "compress = [\"zstd\", \"deflate\"]\n", `:4: key "site.compress": want "zstd", "br" or "gzip", got "deflate"`},
		{"not a list", site + "compress = \"gzip\"\n", `:4: key "site.compress"`},
		{"bad size", site + "\ncompress_min_size = \"big\"\n", `:5: key "site.compress_min_size": want a size`},
		{"negative size", site + "compress_min_size = -1\n", `:4: key "site.compress_min_size": want a size`},
	}
	for _, c := range cases {
		path := writeConfig(t, c.text)
		_, err := Load(path)
		if err == nil {
			t.Errorf("%s: loaded without error", c.name)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, path) || !strings.Contains(msg, c.want) {
			t.Errorf("%s:\n got  %q\n want %q after the file name", c.name, msg, c.want)
		}
	}
}
