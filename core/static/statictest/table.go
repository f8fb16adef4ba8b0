package statictest

import (
	"strconv"
	"strings"
)

// Cases returns the table, in a fresh slice, for the tree that WriteSite
// writes, served with the default static configuration (index.html, no
// Cache-Control, symbolic links confined to the root). Section numbers are
// RFC 9110's unless another RFC is named.
func Cases() []Case {
	var cases []Case
	for _, group := range [][]Case{
		methodCases(), pathCases(), confinementCases(), typeCases(),
		conditionalCases(), rangeCases(), ifRangeCases(), encodingCases(),
	} {
		cases = append(cases, group...)
	}
	return cases
}

func helloFile() fileWant  { return plainFile(textPlain, HelloText) }
func digitsFile() fileWant { return plainFile(textPlain, DigitsText) }

func methodCases() []Case {
	hello := helloFile()
	ok := hello.ok()
	ok.Header = append(ok.Header, h("ETag", HelloETag), h("Last-Modified", "Tue, 02 Jan 2024 03:04:05 GMT"))
	return []Case{
		{"9.3.1 GET of a file: 200 with its content, validators and Accept-Ranges", get("/hello.txt"), ok},
		{"9.3.2 HEAD: the header of GET, Content-Length included, no content", head("/hello.txt"), hello.headOK()},
		{"9.3.7 OPTIONS: 204 with Allow, no Content-Length (8.6)", Request{Method: "OPTIONS", Target: "/hello.txt"},
			Want{Status: 204, Header: []Field{h("Allow", allow)}, Absent: []string{"Content-Length", "ETag"}}},
		{"15.5.6 POST: 405 with Allow", Request{Method: "POST", Target: "/hello.txt"}, status(405, "Method Not Allowed", h("Allow", allow))},
		{"15.5.6 DELETE: 405 with Allow", Request{Method: "DELETE", Target: "/hello.txt"}, status(405, "Method Not Allowed", h("Allow", allow))},
		{"9.1 method names are case-sensitive: get is not GET, 405", Request{Method: "get", Target: "/hello.txt"}, status(405, "Method Not Allowed", h("Allow", allow))},
		{"15.5.5 missing file: 404", get("/missing.txt"), notFound()},
		{"9.3.2 HEAD of a missing file: the 404 header, no content", head("/missing.txt"), func() Want { w := notFound(); w.Body = ""; return w }()},
	}
}

func pathCases() []Case {
	hello := helloFile()
	docs := plainFile(textHTML, DocsHTML)
	return []Case{
		{"15.3.1 / serves index.html", get("/"), plainFile(textHTML, IndexHTML).ok()},
		{"15.4.2 a directory without its slash: 301 to the slash", get("/docs"), status(301, "Moved Permanently", h("Location", "/docs/"))},
		{"15.4.2 the redirect keeps the query as received", get("/docs?a=1&b=%2F"), status(301, "Moved Permanently", h("Location", "/docs/?a=1&b=%2F"))},
		{"15.4.2 the redirect keeps the path's encoding", get("/d%6Fcs"), status(301, "Moved Permanently", h("Location", "/d%6Fcs/"))},
		{"15.3.1 a directory with its slash serves its index.html", get("/docs/"), docs.ok()},
		{"15.5.5 a directory without index.html: 404, no listing", get("/noindex/"), notFound()},
		{"15.4.2 a directory without index.html still redirects to its slash", get("/noindex"), status(301, "Moved Permanently", h("Location", "/noindex/"))},
		{"15.5.5 a file named with a trailing slash: 404", get("/hello.txt/"), notFound()},
		{"15.3.1 a file in a directory", get("/docs/guide.txt"), plainFile(textPlain, "guide\n").ok()},
		{"4.2.3 percent-encoded space", get("/with%20space.txt"), plainFile(textPlain, "space\n").ok()},
		{"4.2.3 percent-encoded unreserved character", get("/hell%6F.txt"), hello.ok()},
		{"15.5.1 encoded slash %2F: 400", get("/docs%2Fguide.txt"), badRequest()},
		{"15.5.1 encoded slash %2f: 400", get("/docs%2fguide.txt"), badRequest()},
		{"15.5.1 encoded NUL: 400", get("/hello.txt%00"), badRequest()},
		{"15.5.1 encoded NUL before an extension: 400", get("/hello.txt%00.html"), badRequest()},
		{"15.5.1 encoded control character: 400", get("/hello.txt%0A"), badRequest()},
		{"15.5.1 invalid percent-encoding %zz: 400", invalidURI("/%zz"), badRequest()},
		{"15.5.1 truncated percent-encoding: 400", invalidURI("/hello%2"), badRequest()},
		{"15.5.1 lone percent sign: 400", invalidURI("/hello%"), badRequest()},
		{"15.5.1 encoded backslash %5C: 400", get("/docs%5Cguide.txt"), badRequest()},
		{"15.5.1 raw backslash: 400", raw("GET", `/docs\guide.txt`), badRequest()},
	}
}

func confinementCases() []Case {
	hello := helloFile()
	return []Case{
		{"15.5.5 dot-dot segment (RFC 3986 5.2.4): 404", raw("GET", "/../outside/secret.txt"), notFound()},
		{"15.5.5 dot-dot inside the tree: 404, not resolved", raw("GET", "/docs/../hello.txt"), notFound()},
		{"15.5.5 encoded dot-dot %2e%2e: 404", raw("GET", "/%2e%2e/outside/secret.txt"), notFound()},
		{"15.5.5 half-encoded dot-dot .%2e: 404", raw("GET", "/.%2e/outside/secret.txt"), notFound()},
		{"15.5.5 mixed-case encoded dot-dot %2E%2e: 404", raw("GET", "/%2E%2e/outside/secret.txt"), notFound()},
		{"15.5.1 dot-dot with encoded slash: 400", raw("GET", "/docs/%2e%2e%2fhello.txt"), badRequest()},
		{"15.5.1 dot-dot with encoded backslash: 400", raw("GET", "/..%5coutside%5csecret.txt"), badRequest()},
		{"15.5.5 dot segment: 404", raw("GET", "/./hello.txt"), notFound()},
		{"15.5.5 empty segment: 404", raw("GET", "//hello.txt"), notFound()},
		{"15.5.5 empty segment before a directory: 404, never a //host redirect", raw("GET", "//docs"), notFound()},
		{"15.5.5 empty segment inside: 404", raw("GET", "/docs//guide.txt"), notFound()},
		{"15.5.5 dot file: 404", get("/.env"), notFound()},
		{"15.5.5 encoded dot file: 404", get("/%2eenv"), notFound()},
		{"15.5.5 file in a dot directory: 404", get("/.git/config"), notFound()},
		{"15.5.5 dot directory: 404", get("/.git/"), notFound()},
		{"15.5.5 dot file in a subdirectory: 404", get("/sub/.hidden"), notFound()},
		{"15.3.1 symbolic link to a file inside: served", get("/link-in.txt"), hello.ok()},
		{"15.3.1 symbolic link up and back inside: served", get("/sub/link-up.txt"), hello.ok()},
		{"15.3.1 symbolic link to a directory inside: its index", get("/link-dir/"), plainFile(textHTML, DocsHTML).ok()},
		{"15.4.2 symbolic link to a directory, no slash: 301", get("/link-dir"), status(301, "Moved Permanently", h("Location", "/link-dir/"))},
		{"15.5.5 symbolic link leaving the root: 404", get("/link-out.txt"), notFound()},
		{"15.5.5 absolute symbolic link: 404", get("/link-abs.txt"), notFound()},
		{"15.5.5 symbolic link loop: 404", get("/loop-a"), notFound()},
		{"15.5.5 dangling symbolic link: 404", get("/dangling.txt"), notFound()},
	}
}

func typeCases() []Case {
	directGzip := plainFile("application/gzip", CSSGzip())
	directGzip.etag, directGzip.lastModified = etag(true, len(CSSGzip()), ""), sidecarLastModified
	big := plainFile(octets, BigText())
	empty := plainFile(textPlain, "")
	return []Case{
		{"8.3 JSON", get("/page.json"), plainFile("application/json", "{\"ok\":true}\n").ok()},
		{"8.3 SVG", get("/image.svg"), plainFile("image/svg+xml", "<svg xmlns=\"http://www.w3.org/2000/svg\"/>\n").ok()},
		{"8.3 extensions compare case-insensitively", get("/UPPER.HTML"), plainFile(textHTML, "<p>upper</p>\n").ok()},
		{"8.3 unknown extension: application/octet-stream", get("/file.anxunknown"), plainFile(octets, "?\n").ok()},
		{"8.4 a sidecar asked for by name is a plain gzip file, no Content-Encoding", get("/a.css.gz"), directGzip.ok()},
		{"8.6 a file larger than any copy buffer", get("/big.bin"), big.ok()},
		{"8.6 an empty file", get("/empty.txt"), empty.ok()},
	}
}

func conditionalCases() []Case {
	hello, digits := helloFile(), digitsFile()
	failed := status(412, "Precondition Failed")
	return []Case{
		{"13.1.2 If-None-Match with the ETag: 304", get("/hello.txt", h("If-None-Match", HelloETag)), hello.notModified()},
		{"13.1.2 If-None-Match compares weakly: W/ETag matches, 304", get("/hello.txt", h("If-None-Match", "W/"+HelloETag)), hello.notModified()},
		{"13.1.2 If-None-Match list holding the ETag: 304", get("/hello.txt", h("If-None-Match", `"x", W/"y" ,`+HelloETag+`, "z"`)), hello.notModified()},
		{"5.3 If-None-Match over two field lines: 304", get("/hello.txt", h("If-None-Match", `"x"`), h("If-None-Match", HelloETag)), hello.notModified()},
		{"13.1.2 If-None-Match with another ETag: 200", get("/hello.txt", h("If-None-Match", `"other"`)), hello.ok()},
		{"13.1.2 If-None-Match * on an existing file: 304", get("/hello.txt", h("If-None-Match", "*")), hello.notModified()},
		{"13.1.2 If-None-Match with an unquoted tag matches nothing: 200", get("/hello.txt", h("If-None-Match", "17a668b7375cff15-d")), hello.ok()},
		{"13.1.2 If-None-Match mixing * and a tag is invalid: 200", get("/hello.txt", h("If-None-Match", "*, "+HelloETag)), hello.ok()},
		{"13.2.1 preconditions on a missing file are ignored: 404", get("/missing.txt", h("If-None-Match", "*")), notFound()},
		{"13.2.1 If-Match * on a missing file is ignored: 404", get("/missing.txt", h("If-Match", "*")), notFound()},
		{"13.2.2 HEAD with If-None-Match: 304", head("/hello.txt", h("If-None-Match", HelloETag)), hello.notModified()},
		{"13.1.3 If-Modified-Since equal to Last-Modified: 304", get("/hello.txt", h("If-Modified-Since", lastModified)), hello.notModified()},
		{"13.1.3 If-Modified-Since after Last-Modified: 304", get("/hello.txt", h("If-Modified-Since", "Wed, 03 Jan 2024 00:00:00 GMT")), hello.notModified()},
		{"13.1.3 If-Modified-Since before Last-Modified: 200", get("/hello.txt", h("If-Modified-Since", "Tue, 02 Jan 2024 03:04:04 GMT")), hello.ok()},
		{"13.1.3 If-Modified-Since not a date: ignored, 200", get("/hello.txt", h("If-Modified-Since", "yesterday")), hello.ok()},
		{"5.6.7 HTTP-date is case-sensitive: ignored, 200", get("/hello.txt", h("If-Modified-Since", "tue, 02 jan 2024 03:04:05 gmt")), hello.ok()},
		{"5.6.7 obsolete RFC 850 date: 304", get("/hello.txt", h("If-Modified-Since", "Tuesday, 02-Jan-24 03:04:05 GMT")), hello.notModified()},
		{"5.6.7 asctime date: 304", get("/hello.txt", h("If-Modified-Since", "Tue Jan  2 03:04:05 2024")), hello.notModified()},
		{"13.1.3 If-Modified-Since with two members: ignored, 200", get("/hello.txt", h("If-Modified-Since", lastModified+", "+lastModified)), hello.ok()},
		{"13.1.3 If-Modified-Since ignored beside If-None-Match: 200", get("/hello.txt", h("If-None-Match", `"other"`), h("If-Modified-Since", lastModified)), hello.ok()},
		{"13.1.1 If-Match with the ETag: 200", get("/hello.txt", h("If-Match", HelloETag)), hello.ok()},
		{"13.1.1 If-Match compares strongly: W/ETag fails, 412", get("/hello.txt", h("If-Match", "W/"+HelloETag)), failed},
		{"13.1.1 If-Match with another ETag: 412", get("/hello.txt", h("If-Match", `"other"`)), failed},
		{"13.1.1 If-Match * on an existing file: 200", get("/hello.txt", h("If-Match", "*")), hello.ok()},
		{"13.1.1 HEAD with a failing If-Match: 412, no content", head("/hello.txt", h("If-Match", `"other"`)), func() Want { w := failed; w.Body = ""; return w }()},
		{"13.1.4 If-Unmodified-Since equal to Last-Modified: 200", get("/hello.txt", h("If-Unmodified-Since", lastModified)), hello.ok()},
		{"13.1.4 If-Unmodified-Since before Last-Modified: 412", get("/hello.txt", h("If-Unmodified-Since", "Tue, 02 Jan 2024 03:04:04 GMT")), failed},
		{"13.1.4 If-Unmodified-Since not a date: ignored, 200", get("/hello.txt", h("If-Unmodified-Since", "soon")), hello.ok()},
		{"13.1.4 If-Unmodified-Since ignored beside If-Match: 200", get("/hello.txt", h("If-Match", HelloETag), h("If-Unmodified-Since", "Tue, 02 Jan 2024 03:04:04 GMT")), hello.ok()},
		{"13.2.2 If-Match is evaluated before If-None-Match: 412", get("/hello.txt", h("If-Match", `"other"`), h("If-None-Match", HelloETag)), failed},
		{"13.2.2 If-Unmodified-Since is evaluated before If-Modified-Since: 412", get("/hello.txt", h("If-Unmodified-Since", "Mon, 01 Jan 2024 00:00:00 GMT"), h("If-Modified-Since", lastModified)), failed},
		{"14.2 Range is evaluated after If-None-Match: 304", get("/digits.txt", h("Range", "bytes=0-1"), h("If-None-Match", digits.etag)), digits.notModified()},
		{"14.2 an unsatisfiable Range after a false If-None-Match: 304", get("/digits.txt", h("Range", "bytes=100-"), h("If-None-Match", digits.etag)), digits.notModified()},
		{"13.2.2 an unsatisfiable Range after a failing If-Match: 412", get("/digits.txt", h("Range", "bytes=100-"), h("If-Match", `"other"`)), failed},
	}
}

func rangeCases() []Case {
	unsatisfiable := func(length int) Want {
		return status(416, "Range Not Satisfiable", h("Content-Range", "bytes */"+strconv.Itoa(length)))
	}
	digits, empty, big := digitsFile(), plainFile(textPlain, ""), plainFile(octets, BigText())
	var hundred, hundredOne []string
	var hundredParts [][2]int
	for i := range 101 {
		spec := strconv.Itoa(2*i) + "-" + strconv.Itoa(2*i)
		hundredOne = append(hundredOne, spec)
		if i < 100 {
			hundred = append(hundred, spec)
			hundredParts = append(hundredParts, [2]int{2 * i, 2 * i})
		}
	}
	return []Case{
		{"14.1.2 bytes=0-4: 206 with Content-Range", get("/digits.txt", h("Range", "bytes=0-4")), digits.partial(0, 4)},
		{"14.1.2 open range bytes=30-: to the end", get("/digits.txt", h("Range", "bytes=30-")), digits.partial(30, 35)},
		{"14.1.2 suffix range bytes=-6: the last 6 bytes", get("/digits.txt", h("Range", "bytes=-6")), digits.partial(30, 35)},
		{"14.1.2 suffix longer than the file: all of it, 206", get("/digits.txt", h("Range", "bytes=-100")), digits.partial(0, 35)},
		{"14.1.2 last-pos past the end: up to the end", get("/digits.txt", h("Range", "bytes=10-1000")), digits.partial(10, 35)},
		{"14.1.2 numbers too large for 64 bits: up to the end", get("/digits.txt", h("Range", "bytes=1-99999999999999999999999999")), digits.partial(1, 35)},
		{"14.1 range units are case-insensitive", get("/digits.txt", h("Range", "BYTES=0-0")), digits.partial(0, 0)},
		// Whitespace inside the value: a value that starts or ends with it
		// is malformed over HTTP/2 (RFC 9113 section 8.2.1), and HTTP/1.1
		// strips it before the handler sees the field.
		{"14.1.1 whitespace around range-specs", get("/digits.txt", h("Range", "bytes= 1-2")), digits.partial(1, 2)},
		{"14.1.2 first-pos at the end: 416 with bytes */length", get("/digits.txt", h("Range", "bytes=36-")), unsatisfiable(36)},
		{"14.1.2 first-pos too large for 64 bits: 416", get("/digits.txt", h("Range", "bytes=99999999999999999999999999-")), unsatisfiable(36)},
		{"14.1.2 zero suffix-length: 416", get("/digits.txt", h("Range", "bytes=-0")), unsatisfiable(36)},
		{"14.1.2 every range unsatisfiable: 416", get("/digits.txt", h("Range", "bytes=40-50,60-")), unsatisfiable(36)},
		{"14.1.1 last-pos before first-pos is invalid: ignored, 200", get("/digits.txt", h("Range", "bytes=5-2")), digits.ok()},
		{"14.1.1 one invalid range-spec invalidates the set: 200", get("/digits.txt", h("Range", "bytes=0-1,5-2")), digits.ok()},
		{"14.2 unknown range unit: ignored, 200", get("/digits.txt", h("Range", "items=0-1")), digits.ok()},
		{"14.1.1 not a range: ignored, 200", get("/digits.txt", h("Range", "bytes=abc")), digits.ok()},
		{"14.1.1 empty range set: ignored, 200", get("/digits.txt", h("Range", "bytes=")), digits.ok()},
		{"14.1.1 no equals sign: ignored, 200", get("/digits.txt", h("Range", "bytes 0-1")), digits.ok()},
		{"14.2 Range on two field lines is not one ranges-specifier: 200", get("/digits.txt", h("Range", "bytes=0-1"), h("Range", "bytes=2-3")), digits.ok()},
		{"14.2 HEAD ignores Range: 200", head("/digits.txt", h("Range", "bytes=0-4")), digits.headOK()},
		{"14.1.2 empty file: bytes=0- is unsatisfiable, 416", get("/empty.txt", h("Range", "bytes=0-")), unsatisfiable(0)},
		{"14.2 empty file: a suffix range may be ignored, 200", get("/empty.txt", h("Range", "bytes=-5")), empty.ok()},
		{"15.3.7.2 two ranges: multipart/byteranges", get("/digits.txt", h("Range", "bytes=0-0,-1")), digits.multipart([2]int{0, 0}, [2]int{35, 35})},
		{"15.3.7.2 parts keep the requested order", get("/digits.txt", h("Range", "bytes=10-11, 0-1")), digits.multipart([2]int{10, 11}, [2]int{0, 1})},
		{"15.3.7.2 one satisfiable range of two: a single part", get("/digits.txt", h("Range", "bytes=0-1,100-200")), digits.partial(0, 1)},
		{"17.15 overlapping ranges adding up past the file: ignored, 200", get("/digits.txt", h("Range", "bytes=0-35,0-35")), digits.ok()},
		{"17.15 one hundred ranges: served", get("/big.bin", h("Range", "bytes="+strings.Join(hundred, ","))), big.multipart(hundredParts...)},
		{"17.15 more than one hundred ranges: ignored, 200", get("/big.bin", h("Range", "bytes="+strings.Join(hundredOne, ","))), big.ok()},
		{"14.1.2 a range of a large file", get("/big.bin", h("Range", "bytes=100000-165537")), big.partial(100000, 165537)},
	}
}

func ifRangeCases() []Case {
	digits := digitsFile()
	return []Case{
		{"13.1.5 If-Range with the ETag: 206 without repeated metadata (15.3.7)", get("/digits.txt", h("Range", "bytes=0-4"), h("If-Range", digits.etag)), digits.sparsePartial(0, 4)},
		{"13.1.5 If-Range with another ETag: the whole file, 200", get("/digits.txt", h("Range", "bytes=0-4"), h("If-Range", `"other"`)), digits.ok()},
		{"13.1.5 If-Range compares strongly: a weak ETag never matches, 200", get("/digits.txt", h("Range", "bytes=0-4"), h("If-Range", "W/"+digits.etag)), digits.ok()},
		{"13.1.5 If-Range with the Last-Modified date: 206", get("/digits.txt", h("Range", "bytes=0-4"), h("If-Range", lastModified)), digits.sparsePartial(0, 4)},
		{"13.1.5 If-Range with a later date: not an exact match, 200", get("/digits.txt", h("Range", "bytes=0-4"), h("If-Range", "Wed, 03 Jan 2024 00:00:00 GMT")), digits.ok()},
		{"13.1.5 If-Range neither ETag nor date: 200", get("/digits.txt", h("Range", "bytes=0-4"), h("If-Range", "whatever")), digits.ok()},
		{"13.1.5 If-Range without Range: ignored, 200", get("/digits.txt", h("If-Range", `"other"`)), digits.ok()},
		{"13.1.5 a false If-Range drops even an unsatisfiable Range: 200", get("/digits.txt", h("Range", "bytes=100-"), h("If-Range", `"other"`)), digits.ok()},
		{"13.1.5 If-Range with the ETag and two ranges: multipart", get("/digits.txt", h("Range", "bytes=0-0,2-2"), h("If-Range", digits.etag)),
			func() Want {
				w := digits.multipart([2]int{0, 0}, [2]int{2, 2})
				w.Header = []Field{h("ETag", digits.etag)}
				w.Absent = append(w.Absent, "Last-Modified")
				return w
			}()},
	}
}

func encodingCases() []Case {
	css := plainFile(textCSS, CSSText)
	css.varies = true
	variant := func(coding, suffix, body string) fileWant {
		return fileWant{contentType: textCSS, body: body, etag: etag(true, len(body), suffix),
			lastModified: sidecarLastModified, coding: coding, varies: true}
	}
	br, zstd, gz := variant("br", "-br", CSSBrotli()), variant("zstd", "-zst", CSSZstd()), variant("gzip", "-gz", CSSGzip())
	js := plainFile(textJS, JSText)
	js.varies = true
	jsGzip := fileWant{contentType: textJS, body: JSGzip(), etag: etag(true, len(JSGzip()), "-gz"),
		lastModified: sidecarLastModified, coding: "gzip", varies: true}
	ae := func(value string) Field { return h("Accept-Encoding", value) }
	hello := helloFile()
	return []Case{
		{"12.5.3 no Accept-Encoding: identity, Vary: Accept-Encoding", get("/a.css"), css.ok()},
		{"12.5.3 gzip", get("/a.css", ae("gzip")), gz.ok()},
		{"8.4.1.3 x-gzip means gzip", get("/a.css", ae("x-gzip")), gz.ok()},
		{"8.4.1 codings are case-insensitive", get("/a.css", ae("GZIP")), gz.ok()},
		{"12.5.3 equal weights: the server's order, br first", get("/a.css", ae("gzip, deflate, br, zstd")), br.ok()},
		{"12.5.3 zstd", get("/a.css", ae("zstd")), zstd.ok()},
		{"12.5.3 the highest weight wins", get("/a.css", ae("gzip;q=1, br;q=0.5")), gz.ok()},
		{"12.4.2 q=0 means not acceptable", get("/a.css", ae("br;q=0, gzip")), gz.ok()},
		{"12.5.3 * matches every coding", get("/a.css", ae("*")), br.ok()},
		{"12.5.3 * covers what is not listed", get("/a.css", ae("*;q=0.5, br;q=0")), zstd.ok()},
		{"12.5.3 identity", get("/a.css", ae("identity")), css.ok()},
		{"12.5.3 an empty Accept-Encoding wants no coding", get("/a.css", ae("")), css.ok()},
		{"12.4.1 nothing acceptable, identity excluded: the field is disregarded", get("/a.css", ae("*;q=0")), css.ok()},
		{"12.5.3 identity;q=0 leaves a low-weight coding", get("/a.css", ae("identity;q=0, gzip;q=0.001")), gz.ok()},
		{"12.5.3 identity weighted above the codings", get("/a.css", ae("identity;q=1, gzip;q=0.5")), css.ok()},
		{"12.5.3 unlisted identity is only the fallback", get("/a.css", ae("gzip;q=0.5")), gz.ok()},
		{"12.4.2 invalid qvalue: the element is dropped", get("/a.css", ae("gzip;q=2")), css.ok()},
		{"5.3 Accept-Encoding over two field lines", get("/a.css", ae("br;q=0"), ae("gzip")), gz.ok()},
		{"9.3.2 HEAD of a variant: its header, no content", head("/a.css", ae("br")), br.headOK()},
		{"13.1.2 If-None-Match with the variant's ETag: 304 with Vary", get("/a.css", ae("br"), h("If-None-Match", br.etag)), br.notModified()},
		{"13.1.2 If-None-Match with the identity ETag does not match the br variant: 200", get("/a.css", ae("br"), h("If-None-Match", css.etag)), br.ok()},
		{"13.1.2 If-None-Match on the identity representation: 304 with Vary", get("/a.css", h("If-None-Match", css.etag)), css.notModified()},
		{"14.1.2 a range of a variant counts encoded bytes", get("/a.css", ae("gzip"), h("Range", "bytes=0-3")), gz.partial(0, 3)},
		{"14.2 several ranges of a variant: ignored, 200", get("/a.css", ae("gzip"), h("Range", "bytes=0-0,2-2")), gz.ok()},
		{"15.5.13 412 for a resource with variants carries Vary", get("/a.css", ae("gzip"), h("If-Match", `"other"`)),
			status(412, "Precondition Failed", h("Vary", "Accept-Encoding"))},
		{"15.5.17 416 for a variant gives the variant's length", get("/a.css", ae("gzip"), h("Range", "bytes=1000-")),
			status(416, "Range Not Satisfiable", h("Content-Range", "bytes */"+strconv.Itoa(len(CSSGzip()))), h("Vary", "Accept-Encoding"))},
		{"12.5.3 a coding without its sidecar: identity, still Vary", get("/only-gz.js", ae("br")), js.ok()},
		{"12.5.3 the one sidecar there is", get("/only-gz.js", ae("br, gzip")), jsGzip.ok()},
		{"12.5.5 a file without sidecars does not vary", get("/hello.txt", ae("gzip, br")), hello.ok()},
	}
}
