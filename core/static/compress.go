package static

import (
	"io/fs"
	"runtime"
	"strings"

	"github.com/anx-gateway/anx/core/encode"
)

// On-the-fly compression of static files. A file without a precompressed
// sidecar for the coding a client prefers, of a compressible type and at
// least CompressMinSize bytes, is compressed once per coding and kept in
// memory (variantCache), keyed by the file's identity, so that a hot file
// costs one compression, not one per request. A file of at most
// inlineBody bytes (4 KiB, held in memory already) is compressed in the
// request that first wants it: that took under 0.3 ms for br, the slowest
// coding, on the 2-core machines anx is tested on, once per file and
// coding. A larger one is compressed off the event loop by a goroutine
// (at most half the cores at once), and until its variant is ready the
// file is sent uncompressed. A variant has its own ETag (the file's with
// the coding added) and Content-Length; responses vary on
// Accept-Encoding. A Range request is always answered from the file
// itself: never a range of a compressed variant. A precompressed sidecar
// the client accepts wins over compressing on the fly.

const (
	defaultCompressCacheBytes = 64 << 20
	// variantOverhead is what a cached variant costs besides its bytes
	// and its path: its record, its key and its header values.
	variantOverhead = 256
)

func (c *Config) compressMinSize() int64 {
	if c.CompressMinSize == 0 {
		return encode.DefaultMinSize
	}
	return c.CompressMinSize
}

func (c *Config) compressCacheBytes() int64 {
	if c.CompressCacheBytes == 0 {
		return defaultCompressCacheBytes
	}
	return c.CompressCacheBytes
}

// fileKey identifies the content of a file: its path and, so that a
// change or a replacement shows, its size, modification time, device and
// inode.
type fileKey struct {
	path     string
	size     int64
	modNanos int64
	dev, ino uint64
}

// fileKeyOf returns the key of the file opened as name. The name is
// copied: a request's path may point into the front end's input buffer,
// which is reused, and the key outlives the request.
func fileKeyOf(name string, info fs.FileInfo) fileKey {
	dev, ino := deviceAndInode(info)
	return fileKey{path: strings.Clone(name), size: info.Size(), modNanos: info.ModTime().UnixNano(), dev: dev, ino: ino}
}

// markCompressible lets e be compressed on the fly when compression is on
// and the file is of a compressible type and large enough, and not so
// large that its variant would crowd the cache: then its responses vary
// on Accept-Encoding.
func (h *Handler) markCompressible(e *entry, name string, info fs.FileInfo) {
	vc := h.variants
	if vc == nil || !vc.worthCompressing(e.contentType, info.Size()) {
		return
	}
	key := fileKeyOf(name, info)
	e.fly = &key
	e.hasVariants = true
}

// compressedVariant returns the representation to send instead of id,
// the file itself, for a request whose Accept-Encoding field value is
// accept: a compressed variant when the client prefers one and it is
// ready, else id. It starts compressing a large file that is not cached.
func (h *Handler) compressedVariant(e *entry, accept string, id *representation) (coding, *representation) {
	vc := h.variants
	a := encode.ParseAccept(accept)
	ec := a.Choose(vc.offered)
	if ec == encode.Identity {
		return identity, id
	}
	key := variantKey{file: *e.fly, coding: ec}
	v, cached := vc.get(key)
	switch {
	case cached && v == nil:
		return identity, id // compressing does not pay for this file
	case cached:
		return codingOf(ec), v
	case id.body != nil:
		if v = vc.compressNow(key, id); v != nil {
			return codingOf(ec), v
		}
		return identity, id
	}
	vc.compressLater(key, e)
	return identity, id
}

// codingOf maps an encode.Coding to the coding of this package, whose
// name is sent in Content-Encoding.
func codingOf(c encode.Coding) coding {
	switch c {
	case encode.Zstd:
		return zstandard
	case encode.Brotli:
		return brotli
	case encode.Gzip:
		return gzipCoding
	}
	return identity
}

// maxCompressJobs is how many large files are compressed at once: at
// most half the cores, so that serving goes on beside.
func maxCompressJobs() int {
	return max(1, runtime.GOMAXPROCS(0)/2)
}
