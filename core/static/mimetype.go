package static

import (
	"mime"
	"strings"
)

// defaultContentType is sent for a file whose type is not known.
const defaultContentType = "application/octet-stream"

// contentTypes maps a lower-case file extension to the Content-Type sent
// for it. It is built in so that the common web types do not depend on the
// host's mime.types; text types carry charset=utf-8. It is never changed.
var contentTypes = map[string]string{
	".html":        "text/html; charset=utf-8",
	".htm":         "text/html; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".mjs":         "text/javascript; charset=utf-8",
	".json":        "application/json",
	".map":         "application/json",
	".webmanifest": "application/manifest+json",
	".txt":         "text/plain; charset=utf-8",
	".md":          "text/markdown; charset=utf-8",
	".csv":         "text/csv; charset=utf-8",
	".xml":         "text/xml; charset=utf-8",
	".xhtml":       "application/xhtml+xml",
	".svg":         "image/svg+xml",
	".png":         "image/png",
	".jpg":         "image/jpeg",
	".jpeg":        "image/jpeg",
	".gif":         "image/gif",
	".webp":        "image/webp",
	".avif":        "image/avif",
	".ico":         "image/vnd.microsoft.icon",
	".bmp":         "image/bmp",
	".wasm":        "application/wasm",
	".woff":        "font/woff",
	".woff2":       "font/woff2",
	".ttf":         "font/ttf",
	".otf":         "font/otf",
	".pdf":         "application/pdf",
	".zip":         "application/zip",
	".gz":          "application/gzip",
	".zst":         "application/zstd",
	".br":          "application/octet-stream",
	".bin":         "application/octet-stream",
	".tar":         "application/x-tar",
	".mp4":         "video/mp4",
	".webm":        "video/webm",
	".ogv":         "video/ogg",
	".mp3":         "audio/mpeg",
	".ogg":         "audio/ogg",
	".oga":         "audio/ogg",
	".wav":         "audio/wav",
	".flac":        "audio/flac",
	".m4a":         "audio/mp4",
	".vtt":         "text/vtt; charset=utf-8",
}

// contentTypeOf returns the Content-Type for a file name: from the built-in
// table, else from the host's table (mime.TypeByExtension), else
// application/octet-stream.
func contentTypeOf(name string) string {
	ext := extension(name)
	if ext == "" {
		return defaultContentType
	}
	if t, ok := contentTypes[ext]; ok {
		return t
	}
	lower := strings.ToLower(ext)
	if t, ok := contentTypes[lower]; ok {
		return t
	}
	if t := mime.TypeByExtension(lower); t != "" {
		return t
	}
	return defaultContentType
}

// extension returns the extension of the last element of a slash-separated
// name, dot included, or "".
func extension(name string) string {
	for i := len(name) - 1; i >= 0 && name[i] != '/'; i-- {
		if name[i] == '.' {
			return name[i:]
		}
	}
	return ""
}
