package encode

import (
	"bytes"
	"strings"

	"github.com/anx-gateway/anx/core/message"
)

// compressibleTypes are the media types, besides text/* and the +json,
// +xml and +yaml structured syntaxes, whose content is not compressed
// already: scripts, data, WebAssembly, uncompressed fonts and bitmaps.
// Images in compressed formats, video, audio, archives and woff/woff2
// fonts are left out: compressing them again costs CPU and saves nothing.
var compressibleTypes = map[string]bool{
	"application/json":              true,
	"application/javascript":        true,
	"application/x-javascript":      true,
	"application/ecmascript":        true,
	"application/xml":               true,
	"application/wasm":              true,
	"application/yaml":              true,
	"application/toml":              true,
	"application/x-ndjson":          true,
	"application/graphql":           true,
	"application/sql":               true,
	"application/rtf":               true,
	"application/x-sh":              true,
	"application/x-tar":             true,
	"application/vnd.ms-fontobject": true,
	"application/x-font-ttf":        true,
	"application/x-font-opentype":   true,
	"font/ttf":                      true,
	"font/otf":                      true,
	"font/eot":                      true,
	"font/collection":               true,
	"image/svg+xml":                 true,
	"image/bmp":                     true,
	"image/x-icon":                  true,
	"image/vnd.microsoft.icon":      true,
}

// Compressible reports whether content of the given Content-Type field
// value is worth compressing: text/* (text/event-stream included: a
// stream is flushed as it is relayed), the types listed above, and
// any type with a +json, +xml or +yaml suffix. Parameters and case do not
// matter; an empty or malformed value is not compressible.
func Compressible(contentType string) bool {
	mediaType, _, _ := strings.Cut(contentType, ";")
	mediaType = message.TrimOWS(mediaType)
	if len(mediaType) > 100 {
		return false
	}
	var buf [100]byte
	lowered := buf[:len(mediaType)]
	for i := 0; i < len(mediaType); i++ {
		c := mediaType[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lowered[i] = c
	}
	if compressibleTypes[string(lowered)] { // no allocation for a map key
		return true
	}
	slash := bytes.IndexByte(lowered, '/')
	switch {
	case slash <= 0 || slash == len(lowered)-1:
		return false
	case string(lowered[:slash]) == "text":
		return true
	}
	subtype := lowered[slash+1:]
	return bytes.HasSuffix(subtype, []byte("+json")) || bytes.HasSuffix(subtype, []byte("+xml")) || bytes.HasSuffix(subtype, []byte("+yaml"))
}
