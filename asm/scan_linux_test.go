package asm

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"unsafe"
)

// TestScanPageEdges places strings at the very start and the very end of
// a readable page between two PROT_NONE pages, and runs every
// implementation on them: a load before s or past its end faults and
// crashes the test.
func TestScanPageEdges(t *testing.T) {
	page := os.Getpagesize()
	mem, err := syscall.Mmap(-1, 0, 3*page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatalf("mmap: %v", err)
	}
	defer syscall.Munmap(mem)
	if err := syscall.Mprotect(mem[:page], syscall.PROT_NONE); err != nil {
		t.Fatalf("mprotect: %v", err)
	}
	if err := syscall.Mprotect(mem[2*page:], syscall.PROT_NONE); err != nil {
		t.Fatalf("mprotect: %v", err)
	}
	data := mem[page : 2*page]

	var lengths []int
	for n := 0; n <= 200; n++ {
		lengths = append(lengths, n)
	}
	lengths = append(lengths, 255, 256, 257, 1023, 1024, 1025, page-1, page)

	impls := scanImpls()
	for _, k := range scanKernels() {
		acc, stops := k.accepted(), k.stops()
		for _, n := range lengths {
			if n > page {
				continue
			}
			clean := k.clean(acc, n, n)
			for _, at := range []string{"start", "end"} {
				off := 0
				if at == "end" {
					off = page - n
				}
				b := data[off : off+n]
				for _, stop := range []int{-1, n - 1, n / 2} {
					copy(b, clean)
					if stop >= 0 && n > 0 {
						b[stop] = stops[(n+stop)%len(stops)]
					}
					s := unsafe.String(unsafe.SliceData(b), n)
					if n == 0 {
						s = ""
					}
					k.check(t, impls, fmt.Sprintf("len %d at page %s, stop at %d", n, at, stop), s)
				}
			}
		}
	}
}
