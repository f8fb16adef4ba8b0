package static

import (
	"bytes"
	"encoding/json"
	"html"
	"io"
	"io/fs"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/anx-gateway/anx/core/message"
)

// maxListing bounds the names a directory listing reads (listed or
// hidden), so that one request for a huge directory costs a bounded amount
// of disk reads, memory and time on the event loop. A listing cut there
// says so (HTML) and sets the Listing-Truncated field (both forms).
const maxListing = 10000

// readDirBatch is how many names one getdents round reads.
const readDirBatch = 256

// listingEntry is one line of a directory listing, and its JSON form.
type listingEntry struct {
	Name    string `json:"name"`
	IsDir   bool   `json:"is_dir"`
	Size    int64  `json:"size"`     // 0 for a directory
	ModTime string `json:"mod_time"` // RFC 3339, UTC
}

// listing is what serveListing sends for one directory.
type listing struct {
	path      string // the decoded request path, ending in "/"
	entries   []listingEntry
	truncated bool // the directory holds more than maxListing entries
}

// serveListing answers a GET or HEAD for the directory that clean (ending
// in "/") names with its listing, and reports true; it reports false,
// writing nothing, when clean names no directory, so that the caller can
// answer 404 or the fallback. The listing is read now, never cached.
func (h *Handler) serveListing(w message.ResponseWriter, r *message.Request, clean string) bool {
	l, status := h.readListing(clean)
	switch {
	case status == 404:
		return false
	case status != 0:
		writeStatus(w, r, status)
		return true
	}
	var body []byte
	hdr := w.Header()
	if listingWantsJSON(&r.Header) {
		body = l.json()
		hdr.Set("Content-Type", "application/json")
	} else {
		body = l.html()
		hdr.Set("Content-Type", "text/html; charset=utf-8")
	}
	hdr.Add("Vary", "Accept")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Content-Type-Options", "nosniff")
	if l.truncated {
		hdr.Set("Listing-Truncated", strconv.Itoa(maxListing))
	}
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(200)
	if r.Method != "HEAD" {
		_, _ = w.Write(body)
	}
	return true
}

// readListing reads the directory clean names, through the same policy as
// files: os.Root (no way out of the root) unless AllowSymlinksOutside.
// Entries that a request could not get are left out: dot files, names
// that are not UTF-8 or hold a control byte or a backslash, symbolic
// links that lead out of the root (or nowhere), and anything but regular
// files and directories.
func (h *Handler) readListing(clean string) (*listing, int) {
	dir := strings.TrimSuffix(clean[1:], "/")
	if dir == "" {
		dir = "."
	}
	f, err := h.open(dir)
	if err != nil {
		return nil, statusForError(err)
	}
	defer f.Close()
	if info, err := f.Stat(); err != nil || !info.IsDir() {
		return nil, 404
	}
	l := &listing{path: clean}
	names := 0 // read so far, listed or not: what bounds the work
	for names <= maxListing {
		batch, err := f.ReadDir(min(readDirBatch, maxListing+1-names))
		for _, d := range batch {
			if names++; names > maxListing {
				l.truncated = true
				break
			}
			if e, ok := h.listingEntryOf(dir, d); ok {
				l.entries = append(l.entries, e)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, statusForError(err)
		}
	}
	slices.SortFunc(l.entries, compareListingEntries)
	return l, 0
}

// listingEntryOf describes d, found in dir, or reports false when the
// listing leaves it out.
func (h *Handler) listingEntryOf(dir string, d fs.DirEntry) (listingEntry, bool) {
	name := d.Name()
	if !listable(name) {
		return listingEntry{}, false
	}
	var info fs.FileInfo
	var err error
	if d.Type()&fs.ModeSymlink != 0 {
		info, err = h.stat(dir + "/" + name)
	} else {
		info, err = d.Info()
	}
	if err != nil || !info.IsDir() && !info.Mode().IsRegular() {
		return listingEntry{}, false
	}
	e := listingEntry{Name: name, IsDir: info.IsDir(), ModTime: info.ModTime().UTC().Format(time.RFC3339)}
	if !e.IsDir {
		e.Size = info.Size()
	}
	return e, true
}

// stat follows name, relative to the root, as open would: through
// os.Root, which refuses a symbolic link out of the root, or, with
// AllowSymlinksOutside, through the plain file system.
func (h *Handler) stat(name string) (fs.FileInfo, error) {
	if h.root != nil {
		return h.root.Stat(name)
	}
	return os.Stat(h.dir + "/" + name)
}

// listable reports whether a directory entry's name is one a request can
// name and a listing can show as it is: not a dot file, valid UTF-8, no
// control byte and no backslash (which decodePath refuses).
func listable(name string) bool {
	if name == "" || name[0] == '.' || !utf8.ValidString(name) {
		return false
	}
	return !strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' })
}

// compareListingEntries orders directories first, then files, each by
// name (byte order).
func compareListingEntries(a, b listingEntry) int {
	switch {
	case a.IsDir && !b.IsDir:
		return -1
	case !a.IsDir && b.IsDir:
		return 1
	}
	return strings.Compare(a.Name, b.Name)
}

// json returns the listing as a JSON array of listingEntry.
func (l *listing) json() []byte {
	entries := l.entries
	if entries == nil {
		entries = []listingEntry{} // "[]", not "null"
	}
	body, err := json.Marshal(entries)
	if err != nil {
		// Strings, booleans and integers always marshal.
		panic("static: listing: " + err.Error())
	}
	return append(body, '\n')
}

// html returns the listing as an HTML page: a table of names (linked,
// escaped), sizes and modification times, with a link to the parent
// except at the root. Links are relative ("./name"), so that they hold
// under a route that strips a prefix, and a name such as "a:b" is not
// read as a URL scheme.
func (l *listing) html() []byte {
	var b bytes.Buffer
	title := html.EscapeString("Index of " + l.path)
	b.WriteString("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>")
	b.WriteString(title)
	b.WriteString("</title></head>\n<body>\n<h1>")
	b.WriteString(title)
	b.WriteString("</h1>\n<table>\n<thead><tr><th>Name</th><th>Size</th><th>Modified</th></tr></thead>\n<tbody>\n")
	if l.path != "/" {
		b.WriteString("<tr><td><a href=\"../\">../</a></td><td>-</td><td></td></tr>\n")
	}
	for _, e := range l.entries {
		href, text, size := "./"+url.PathEscape(e.Name), e.Name, "-"
		if e.IsDir {
			href, text = href+"/", text+"/"
		} else {
			size = strconv.FormatInt(e.Size, 10)
		}
		b.WriteString("<tr><td><a href=\"")
		b.WriteString(html.EscapeString(href))
		b.WriteString("\">")
		b.WriteString(html.EscapeString(text))
		b.WriteString("</a></td><td>")
		b.WriteString(size)
		b.WriteString("</td><td>")
		b.WriteString(e.ModTime)
		b.WriteString("</td></tr>\n")
	}
	b.WriteString("</tbody>\n</table>\n")
	if l.truncated {
		b.WriteString("<p>The directory has more than " + strconv.Itoa(maxListing) + " entries: the listing stops there.</p>\n")
	}
	b.WriteString("</body></html>\n")
	return b.Bytes()
}

// listingWantsJSON reports whether the request's Accept prefers
// application/json to text/html: JSON has a weight above zero and above
// that of HTML. No Accept, or "*/*", gets HTML.
func listingWantsJSON(h *message.Header) bool {
	accept := acceptValue(h)
	j := mediaWeight(accept, "application/json", true)
	return j > 0 && j > mediaWeight(accept, "text/html", true)
}

// acceptValue returns the request's Accept fields as one list.
func acceptValue(h *message.Header) string {
	var value string
	for v := range h.Values("Accept") {
		if value != "" {
			value += ", "
		}
		value += v
	}
	return value
}

// mediaWeight returns the weight (0 to 1) that the Accept value gives
// mediaType (lower case, "type/subtype"), from the most specific media
// range matching it (RFC 9110 section 12.5.1), or -1 when none does. With
// wildcards false only the exact type counts, not "type/*" or "*/*".
func mediaWeight(accept, mediaType string, wildcards bool) float64 {
	typ, _, _ := strings.Cut(mediaType, "/")
	weight, specificity := -1.0, -1
	for element := range strings.SplitSeq(accept, ",") {
		mediaRange, params, _ := strings.Cut(element, ";")
		mediaRange = strings.ToLower(strings.TrimSpace(mediaRange))
		s := -1
		switch {
		case mediaRange == mediaType:
			s = 2
		case !wildcards:
		case mediaRange == typ+"/*":
			s = 1
		case mediaRange == "*/*":
			s = 0
		}
		if s > specificity {
			weight, specificity = acceptWeight(params), s
		}
	}
	return weight
}

// acceptWeight reads the "q" parameter of a media range's parameters; an
// absent or malformed one counts as 1.
func acceptWeight(params string) float64 {
	for param := range strings.SplitSeq(params, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(param), "=")
		if !strings.EqualFold(strings.TrimSpace(name), "q") {
			continue
		}
		q, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil || q < 0 || q > 1 {
			return 1
		}
		return q
	}
	return 1
}
