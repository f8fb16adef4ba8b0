package static

import "github.com/anx-gateway/anx/core/encode"

// coding is a content coding a representation can have (RFC 9110 section
// 8.4.1). The precompressed codings are listed in the server's order of
// preference, which breaks ties between equal qvalues.
type coding uint8

const (
	identity coding = iota
	brotli
	zstandard
	gzipCoding
	codingCount
)

// precompressed lists the codings served from sidecar files, most
// preferred first.
var precompressed = [...]coding{brotli, zstandard, gzipCoding}

// name is the content-coding token sent in Content-Encoding.
func (c coding) name() string {
	return [...]string{"identity", "br", "zstd", "gzip"}[c]
}

// fileSuffix is appended to a file's name to find its sidecar.
func (c coding) fileSuffix() string {
	return [...]string{"", ".br", ".zst", ".gz"}[c]
}

// etagSuffix distinguishes the entity-tag of a variant.
func (c coding) etagSuffix() string {
	return [...]string{"", "-br", "-zst", "-gz"}[c]
}

// encoding is the coding as core/encode names it.
func (c coding) encoding() encode.Coding {
	return [...]encode.Coding{encode.Identity, encode.Brotli, encode.Zstd, encode.Gzip}[c]
}

// sidecarOrder is precompressed as core/encode names the codings.
var sidecarOrder = [...]encode.Coding{encode.Brotli, encode.Zstd, encode.Gzip}

// chooseCoding selects the representation to send among the available
// ones for an Accept-Encoding field value (RFC 9110 section 12.5.3, read
// by core/encode): the precompressed variant with the highest non-zero
// weight wins, ties going to the server's order (br, zstd, gzip);
// identity wins over them only when the field gives it a strictly higher
// weight, and is sent when nothing is acceptable, as section 12.4.1
// allows in place of 406.
func chooseCoding(acceptEncoding string, available *[codingCount]bool) coding {
	var offered encode.Set
	for _, c := range precompressed {
		if available[c] {
			offered = offered.With(c.encoding())
		}
	}
	accept := encode.ParseAccept(acceptEncoding)
	switch accept.ChooseIn(sidecarOrder[:], offered) {
	case encode.Brotli:
		return brotli
	case encode.Zstd:
		return zstandard
	case encode.Gzip:
		return gzipCoding
	}
	return identity
}
