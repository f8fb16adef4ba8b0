package statictest

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The fixture files' contents.
const (
	IndexHTML = "<!doctype html>\n<title>anx</title>\n"
	DocsHTML  = "<!doctype html>\n<title>docs</title>\n"
	HelloText = "hello, world\n"
	// DigitsText is the file that range cases cut: byte i is the i-th
	// character, so "bytes=10-11" is "ab".
	DigitsText = "0123456789abcdefghijklmnopqrstuvwxyz"
	CSSText    = "body{margin:0;font:16px/1.5 system-ui,sans-serif}\n"
	JSText     = "console.log(\"only gzip\");\n"
	// BigSize is the size of big.bin, larger than any copy buffer.
	BigSize = 200000
)

// ModTime is the modification time of every fixture file except the
// sidecars; it has nanoseconds, which the ETag reflects.
func ModTime() time.Time { return time.Date(2024, 1, 2, 3, 4, 5, 123456789, time.UTC) }

// SidecarModTime is the modification time of the precompressed sidecars,
// an hour later than ModTime, so that a variant's validators are visibly
// its own.
func SidecarModTime() time.Time { return time.Date(2024, 1, 2, 4, 4, 5, 500000000, time.UTC) }

// BigText returns the content of big.bin: a byte pattern that does not
// repeat at any power-of-two period.
func BigText() string {
	b := make([]byte, BigSize)
	for i := range b {
		b[i] = byte((i*7 + i/251) % 253)
	}
	return string(b)
}

// CSSBrotli, CSSZstd and CSSGzip are the sidecars of a.css: valid streams
// that store the content uncompressed, so their sizes are known exactly.
func CSSBrotli() string { return storedBrotli(CSSText) }

// CSSZstd is a.css.zst; see CSSBrotli.
func CSSZstd() string { return storedZstd(CSSText) }

// CSSGzip is a.css.gz; see CSSBrotli.
func CSSGzip() string { return storedGzip(CSSText) }

// JSGzip is only-gz.js.gz, the only sidecar of only-gz.js.
func JSGzip() string { return storedGzip(JSText) }

// file is one regular file of the fixture.
type file struct {
	name, content string
	sidecar       bool // takes SidecarModTime
}

func siteFiles() []file {
	return []file{
		{name: "index.html", content: IndexHTML},
		{name: "hello.txt", content: HelloText},
		{name: "digits.txt", content: DigitsText},
		{name: "empty.txt", content: ""},
		{name: "a.css", content: CSSText},
		{name: "a.css.br", content: CSSBrotli(), sidecar: true},
		{name: "a.css.zst", content: CSSZstd(), sidecar: true},
		{name: "a.css.gz", content: CSSGzip(), sidecar: true},
		{name: "only-gz.js", content: JSText},
		{name: "only-gz.js.gz", content: JSGzip(), sidecar: true},
		{name: "page.json", content: "{\"ok\":true}\n"},
		{name: "image.svg", content: "<svg xmlns=\"http://www.w3.org/2000/svg\"/>\n"},
		{name: "UPPER.HTML", content: "<p>upper</p>\n"},
		{name: "file.anxunknown", content: "?\n"},
		{name: "with space.txt", content: "space\n"},
		{name: "big.bin", content: BigText()},
		{name: "docs/index.html", content: DocsHTML},
		{name: "docs/guide.txt", content: "guide\n"},
		{name: "noindex/file.txt", content: "file\n"},
		{name: "sub/visible.txt", content: "visible\n"},
		{name: "sub/.hidden", content: "hidden\n"},
		{name: ".env", content: "SECRET=1\n"},
		{name: ".git/config", content: "[core]\n"},
	}
}

// siteLinks are the fixture's symbolic links, name to target; a target
// starting with "/" is made absolute to the site root.
func siteLinks() [][2]string {
	return [][2]string{
		{"link-in.txt", "hello.txt"},              // inside: served
		{"link-dir", "docs"},                      // a directory inside: served
		{"sub/link-up.txt", "../hello.txt"},       // up, but still inside: served
		{"link-out.txt", "../outside/secret.txt"}, // leaves the root: 404
		{"link-abs.txt", "/hello.txt"},            // absolute, even to inside: 404 with os.Root
		{"loop-a", "loop-b"},                      // a loop: 404
		{"loop-b", "loop-a"},
		{"dangling.txt", "nowhere.txt"}, // 404
	}
}

// SecretText is the content of outside/secret.txt, next to the root: no
// response may ever contain it.
const SecretText = "secret outside the root\n"

// WriteSite writes the fixture into dir: the served tree in dir/site,
// whose path it returns, and dir/outside/secret.txt beside it. Files get
// fixed modification times (ModTime, SidecarModTime), so Last-Modified
// and ETag values are known in advance. It needs symbolic links (Unix).
func WriteSite(dir string) (root string, err error) {
	root = filepath.Join(dir, "site")
	if err := writeFile(filepath.Join(dir, "outside", "secret.txt"), SecretText, ModTime()); err != nil {
		return "", err
	}
	for _, f := range siteFiles() {
		mtime := ModTime()
		if f.sidecar {
			mtime = SidecarModTime()
		}
		if err := writeFile(filepath.Join(root, filepath.FromSlash(f.name)), f.content, mtime); err != nil {
			return "", err
		}
	}
	for _, link := range siteLinks() {
		target := link[1]
		if strings.HasPrefix(target, "/") {
			target = filepath.Join(root, target)
		}
		if err := os.Symlink(target, filepath.Join(root, filepath.FromSlash(link[0]))); err != nil {
			return "", errors.Join(errors.New("statictest: the fixture needs symbolic links"), err)
		}
	}
	return root, nil
}

func writeFile(path, content string, mtime time.Time) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		return err
	}
	return os.Chtimes(path, mtime, mtime)
}

// storedGzip wraps s in a gzip member (RFC 1952) holding one stored
// deflate block (RFC 1951 section 3.2.4). s must be under 64 KiB.
func storedGzip(s string) string {
	b := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}
	b = append(b, 1) // BFINAL, BTYPE=00 (stored)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(s)))
	b = binary.LittleEndian.AppendUint16(b, ^uint16(len(s)))
	b = append(b, s...)
	b = binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE([]byte(s)))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
	return string(b)
}

// storedZstd wraps s in a Zstandard frame (RFC 8878) of one raw block,
// single segment, one-byte content size. s must be under 256 bytes.
func storedZstd(s string) string {
	b := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x20, byte(len(s))}
	header := uint32(len(s))<<3 | 1 // Last_Block, Raw_Block
	b = append(b, byte(header), byte(header>>8), byte(header>>16))
	return string(append(b, s...))
}

// storedBrotli wraps s in a Brotli stream (RFC 7932) of one uncompressed
// meta-block and an empty last one. s must be 1 to 65536 bytes.
func storedBrotli(s string) string {
	n := uint32(len(s) - 1)
	// WBITS=16 (bit 0), ISLAST=0, MNIBBLES=4 (00), MLEN-1 in 16 bits,
	// ISUNCOMPRESSED=1, padding to the byte.
	b := []byte{byte(n&0xf) << 4, byte(n >> 4), byte(n>>12)&0xf | 1<<4}
	b = append(b, s...)
	return string(append(b, 0x03)) // ISLAST=1, ISLASTEMPTY=1
}
