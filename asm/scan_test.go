package asm

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// scanKernel is one of the three kernels under test: its exported
// function, its Go reference, its table, and how to pick it out of a
// scanImpl.
type scanKernel struct {
	name     string
	exported func(string) int
	ref      func(string) int
	tab      string
	pick     func(scanImpl) func(string) int
	// typical is a realistic run of bytes the kernel accepts, to build
	// clean inputs for the benchmarks.
	typical string
}

func scanKernels() []scanKernel {
	return []scanKernel{
		{
			name: "FieldValueEnd", exported: FieldValueEnd, ref: fieldValueEndGeneric, tab: scanFieldValueTab,
			pick:    func(i scanImpl) func(string) int { return i.fieldValueEnd },
			typical: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36; ",
		},
		{
			name: "TokenEnd", exported: TokenEnd, ref: tokenEndGeneric, tab: scanTokenTab,
			pick:    func(i scanImpl) func(string) int { return i.tokenEnd },
			typical: "Accept-Encoding-X-Forwarded-For-Content-Security-Policy-Report-Only-",
		},
		{
			name: "CleanPathEnd", exported: CleanPathEnd, ref: cleanPathEndGeneric, tab: scanCleanPathTab,
			pick:    func(i scanImpl) func(string) int { return i.cleanPathEnd },
			typical: "/static/js/vendor/react-dom.production.min.3f9a1c2b.js/api/v1/users/42/",
		},
	}
}

// accepted returns every byte value the kernel skips, in order.
func (k scanKernel) accepted() []byte {
	var acc []byte
	for c := 0; c < 256; c++ {
		if k.ref(string([]byte{byte(c)})) == 1 {
			acc = append(acc, byte(c))
		}
	}
	return acc
}

// stops returns every byte value the kernel stops at, in order.
func (k scanKernel) stops() []byte {
	var st []byte
	for c := 0; c < 256; c++ {
		if k.ref(string([]byte{byte(c)})) == 0 {
			st = append(st, byte(c))
		}
	}
	return st
}

// clean returns n bytes the kernel accepts, cycling through all of them
// (starting at seed) so that every accepted byte meets every lane.
func (k scanKernel) clean(acc []byte, n, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = acc[(seed+i*7)%len(acc)]
	}
	return b
}

// check runs every implementation of k (and the exported function) on s
// and reports any that disagree with the reference.
func (k scanKernel) check(t testing.TB, impls []scanImpl, name, s string) {
	t.Helper()
	want := k.ref(s)
	if got := k.exported(s); got != want {
		t.Errorf("%s: %s(%s) = %d, want %d", name, k.name, scanQuote(s), got, want)
	}
	for _, impl := range impls {
		if got := k.pick(impl)(s); got != want {
			t.Errorf("%s: %s/%s(%s) = %d, want %d", name, k.name, impl.name, scanQuote(s), got, want)
		}
	}
}

// scanQuote quotes s for a failure message, cut short when long.
func scanQuote(s string) string {
	if len(s) > 80 {
		return strconv.Quote(s[:80]) + fmt.Sprintf("...(len %d)", len(s))
	}
	return strconv.Quote(s)
}

func TestScanImpls(t *testing.T) {
	impls := scanImpls()
	if len(impls) == 0 || impls[0].name != "Generic" {
		t.Fatalf("scanImpls() must list the Go reference first, got %d", len(impls))
	}
	var names []string
	for _, impl := range impls {
		names = append(names, impl.name)
	}
	t.Logf("implementations on this CPU: %s", strings.Join(names, ", "))
}

// TestScanTables checks each classification table against its reference
// on all 256 bytes, as the SIMD kernels compute the class.
func TestScanTables(t *testing.T) {
	for _, k := range scanKernels() {
		if len(k.tab) != 32 {
			t.Fatalf("%s: table has %d bytes, want 32", k.name, len(k.tab))
		}
		for c := 0; c < 256; c++ {
			class := k.tab[c&15] & k.tab[16+c>>4]
			if got, want := class != 0, k.ref(string([]byte{byte(c)})) == 1; got != want {
				t.Errorf("%s: byte %#02x: table accepts = %v, reference accepts = %v", k.name, c, got, want)
			}
		}
	}
}

// TestScanCases runs hand-written cases whose answers are written down,
// on the reference, the exported function and every implementation.
func TestScanCases(t *testing.T) {
	ua := "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0"
	cookie := "_ga=GA1.2.1234567890.1700000000; _gid=GA1.2.987654321.1700000000; session=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abc; theme=dark"
	path := "/static/js/vendor/react-dom.production.min.3f9a1c2b.js"
	long := strings.Repeat("a", 100)
	cases := []struct {
		kernel, s string
		want      int
	}{
		{"FieldValueEnd", "", 0},
		{"FieldValueEnd", "text/html", 9},
		{"FieldValueEnd", "text/html\r\n", 9},
		{"FieldValueEnd", "a\tb c\x80\xff~", 8},
		{"FieldValueEnd", "a\x7fb", 1},
		{"FieldValueEnd", "\x00", 0},
		{"FieldValueEnd", ua + "\r\nAccept: */*\r\n", len(ua)},
		{"FieldValueEnd", ua, len(ua)},
		{"FieldValueEnd", cookie + "\r\n", len(cookie)},
		{"FieldValueEnd", cookie + "\n", len(cookie)},
		{"FieldValueEnd", long + "\x1f" + long, 100},
		{"FieldValueEnd", long[:31] + "\x0b", 31},
		{"FieldValueEnd", "caf\xc3\xa9 cr\xc3\xa8me br\xc3\xbbl\xc3\xa9e, \xe2\x82\xac 5\r\n", 28},
		{"TokenEnd", "", 0},
		{"TokenEnd", "GET / HTTP/1.1", 3},
		{"TokenEnd", "Content-Type: text/html", 12},
		{"TokenEnd", "X-Forwarded-For:1.2.3.4", 15},
		{"TokenEnd", "!#$%&'*+-.^_`|~09AZaz", 21},
		{"TokenEnd", "a\"", 1},
		{"TokenEnd", "a(", 1},
		{"TokenEnd", "a@", 1},
		{"TokenEnd", "a[", 1},
		{"TokenEnd", "a{", 1},
		{"TokenEnd", "a\x7f", 1},
		{"TokenEnd", "a\x80", 1},
		{"TokenEnd", "Sec-CH-UA-Platform-Version-And-Some-Long-Header-Name: x", 52},
		{"TokenEnd", long + "/", 100},
		{"CleanPathEnd", "", 0},
		{"CleanPathEnd", "/", 1},
		{"CleanPathEnd", path, len(path)},
		{"CleanPathEnd", path + "?v=2", len(path)},
		{"CleanPathEnd", path + "#top", len(path)},
		{"CleanPathEnd", "/caf%C3%A9/menu", 4},
		{"CleanPathEnd", "/a\\b", 2},
		{"CleanPathEnd", "/a b", 2},
		{"CleanPathEnd", "/caf\xc3\xa9", 4},
		{"CleanPathEnd", "/a\x7f", 2},
		{"CleanPathEnd", "/api/v1/users/42/posts?sort=-created&limit=20 HTTP/1.1", 22},
		{"CleanPathEnd", "/~user/a;b,c=d:e@f!$&'()*+[]{}|^`", 33},
		{"CleanPathEnd", long + long + " HTTP/1.1", 200},
	}
	kernels := map[string]scanKernel{}
	for _, k := range scanKernels() {
		kernels[k.name] = k
	}
	impls := scanImpls()
	for _, c := range cases {
		k := kernels[c.kernel]
		if got := k.ref(c.s); got != c.want {
			t.Errorf("%s reference(%s) = %d, want %d", c.kernel, scanQuote(c.s), got, c.want)
		}
		k.check(t, impls, "case", c.s)
	}
}

// scanLengths are the lengths TestScanBytes tries: all of 0..70, then
// around the 64-byte block and its multiples.
func scanLengths() []int {
	var ns []int
	for n := 0; n <= 70; n++ {
		ns = append(ns, n)
	}
	return append(ns, 95, 96, 97, 127, 128, 129, 130, 191, 192, 193, 255, 256, 257, 1000, 1024, 1025)
}

// scanPositions returns the positions in a string of n bytes to try a
// byte at: all of them for short strings, the vector and block edges for
// long ones.
func scanPositions(n int) []int {
	if n <= 70 {
		ps := make([]int, n)
		for i := range ps {
			ps[i] = i
		}
		return ps
	}
	var ps []int
	for _, p := range []int{0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 47, 48, 63, 64, 65, 95, 96, 127, 128, 129,
		n - 65, n - 64, n - 63, n - 33, n - 32, n - 31, n - 17, n - 16, n - 15, n - 2, n - 1} {
		if p >= 0 && p < n {
			ps = append(ps, p)
		}
	}
	return ps
}

// TestScanBytes puts every byte value at every position of clean strings
// of many lengths, alone and before a second stopping byte at the end,
// and runs every implementation.
func TestScanBytes(t *testing.T) {
	impls := scanImpls()
	for _, k := range scanKernels() {
		acc, stops := k.accepted(), k.stops()
		for _, n := range scanLengths() {
			base := k.clean(acc, n, n)
			k.check(t, impls, "clean", string(base))
			for _, p := range scanPositions(n) {
				b := append([]byte(nil), base...)
				for c := 0; c < 256; c++ {
					b[p] = byte(c)
					k.check(t, impls, fmt.Sprintf("len %d, byte %#02x at %d", n, c, p), string(b))
					if p+1 < n {
						b[n-1] = stops[(p+c)%len(stops)]
						k.check(t, impls, fmt.Sprintf("len %d, byte %#02x at %d, stop at end", n, c, p), string(b))
						b[n-1] = base[n-1]
					}
				}
				if t.Failed() {
					t.FailNow()
				}
			}
		}
	}
}

// TestScanOffsets scans the suffixes of one buffer, so that the strings
// start at every alignment.
func TestScanOffsets(t *testing.T) {
	impls := scanImpls()
	for _, k := range scanKernels() {
		acc, stops := k.accepted(), k.stops()
		buf := k.clean(acc, 300, 3)
		for _, stop := range []int{-1, 150, 299} {
			b := append([]byte(nil), buf...)
			if stop >= 0 {
				b[stop] = stops[stop%len(stops)]
			}
			s := string(b)
			for i := 0; i <= len(s); i++ {
				for _, j := range []int{i, i + 15, i + 16, i + 31, i + 32, i + 64, i + 100, len(s)} {
					if j <= len(s) {
						k.check(t, impls, fmt.Sprintf("s[%d:%d], stop at %d", i, j, stop), s[i:j])
					}
				}
			}
		}
	}
}

// TestScanRandom is a deterministic differential test (the fuzz engine
// cannot run under qemu-user, which cannot start the fuzz workers): random
// lengths up to 300, random start offsets, mostly accepted bytes with
// random bytes at a random density.
func TestScanRandom(t *testing.T) {
	impls := scanImpls()
	rounds := 20000
	if testing.Short() {
		rounds = 2000
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, k := range scanKernels() {
		acc := k.accepted()
		buf := make([]byte, 320)
		for range rounds {
			var density int
			switch rng.IntN(4) {
			case 0:
				density = 0
			case 1:
				density = 2
			case 2:
				density = 50
			default:
				density = 500
			}
			off, n := rng.IntN(20), rng.IntN(301)
			b := buf[off : off+n]
			for i := range b {
				if density > 0 && rng.IntN(density) == 0 {
					b[i] = byte(rng.Uint32())
				} else {
					b[i] = acc[rng.IntN(len(acc))]
				}
			}
			// One string per round, checked from off: string(b) alone
			// would copy b to a new, aligned, allocation.
			k.check(t, impls, "random", string(buf[:off+n])[off:])
			if t.Failed() {
				t.FailNow()
			}
		}
	}
}

// scanFuzz checks one fuzz input on every implementation: s as it is and
// after a clean prefix of pad%200 bytes, so that the interesting bytes
// reach every lane and block.
func scanFuzz(f *testing.F, name string) {
	var k scanKernel
	for _, kk := range scanKernels() {
		if kk.name == name {
			k = kk
		}
	}
	acc := k.accepted()
	f.Add(uint16(0), "")
	f.Add(uint16(0), k.typical)
	f.Add(uint16(17), "\r\n")
	f.Add(uint16(63), "Host: example.com\r\n\x00\x7f\x80\xff")
	f.Add(uint16(1), strings.Repeat(k.typical, 5)+"\r\n")
	impls := scanImpls()
	f.Fuzz(func(t *testing.T, pad uint16, s string) {
		k.check(t, impls, "fuzz", s)
		k.check(t, impls, "fuzz, padded", string(k.clean(acc, int(pad%200), int(pad)))+s)
	})
}

func FuzzFieldValueEnd(f *testing.F) { scanFuzz(f, "FieldValueEnd") }
func FuzzTokenEnd(f *testing.F)      { scanFuzz(f, "TokenEnd") }
func FuzzCleanPathEnd(f *testing.F)  { scanFuzz(f, "CleanPathEnd") }

// scanBench benchmarks every implementation of one kernel, and the
// exported function, on clean inputs (the scan runs to the end) of 12 B
// (a typical field name), 32 B, 256 B, 1 KiB and 8 KiB: sub-benchmarks size/implementation, so that
// the implementations of one size print side by side.
func scanBench(b *testing.B, name string) {
	var k scanKernel
	for _, kk := range scanKernels() {
		if kk.name == name {
			k = kk
		}
	}
	impls := append(scanImpls(), scanImpl{"Exported", FieldValueEnd, TokenEnd, CleanPathEnd})
	for _, size := range []struct {
		name string
		n    int
	}{{"12B", 12}, {"32B", 32}, {"256B", 256}, {"1KiB", 1024}, {"8KiB", 8192}} {
		s := strings.Repeat(k.typical, size.n/len(k.typical)+1)[:size.n]
		if k.ref(s) != len(s) {
			b.Fatalf("%s: benchmark input is not clean", name)
		}
		for _, impl := range impls {
			f := k.pick(impl)
			b.Run(size.name+"/"+impl.name, func(b *testing.B) {
				b.SetBytes(int64(len(s)))
				b.ReportAllocs()
				for b.Loop() {
					if f(s) != len(s) {
						b.Fatal("stopped early")
					}
				}
			})
		}
	}
}

func BenchmarkFieldValueEnd(b *testing.B) { scanBench(b, "FieldValueEnd") }
func BenchmarkTokenEnd(b *testing.B)      { scanBench(b, "TokenEnd") }
func BenchmarkCleanPathEnd(b *testing.B)  { scanBench(b, "CleanPathEnd") }
