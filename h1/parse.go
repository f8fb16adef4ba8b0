package h1

import (
	"bytes"
	"net/netip"
	"strings"

	"github.com/anx-gateway/anx/asm"
	"github.com/anx-gateway/anx/core/message"
)

// limits bounds a request head.
type limits struct {
	maxHeadBytes int // bytes of the head: request line, field lines, empty line
	maxFields    int // field lines
}

// headInfo collects, while a head is parsed, the fields that decide how the
// request is framed and whether the connection persists, so that nothing
// has to search the header again.
type headInfo struct {
	hosts     int    // Host field lines
	host      string // value of the first Host field
	lengths   int    // Content-Length field lines
	length    string // value of the first Content-Length field
	codings   int    // Transfer-Encoding field lines
	coding    string // value of the first Transfer-Encoding field
	expects   int    // Expect field lines
	expect    string // value of the first Expect field
	close     bool   // Connection carries "close"
	keepAlive bool   // Connection carries "keep-alive"
	upgrade   bool   // Connection carries "upgrade"
	absolute  bool   // the request-target is in absolute-form
	authority string // its authority, which overrides Host (RFC 9112 section 3.2.2)
}

// scanHead looks for the end of the request head that starts buf: the
// empty line after the request line and the field lines. It returns the
// head's length, or 0 when the head is not complete yet; next is then the
// offset at which to resume when more bytes have arrived, since the bytes
// before it cannot hold the end. A line ends in LF, with or without a CR
// before it (RFC 9112 section 2.2). buf must not start with an empty line
// (see skipEmptyLines).
func scanHead(buf []byte, from int) (n, next int) {
	i := from
	for {
		j := bytes.IndexByte(buf[i:], '\n')
		if j < 0 {
			return 0, len(buf)
		}
		lf := i + j
		i = lf + 1
		if i == len(buf) {
			return 0, lf
		}
		switch buf[i] {
		case '\n':
			return i + 1, 0
		case '\r':
			if i+1 == len(buf) {
				return 0, lf
			}
			if buf[i+1] == '\n' {
				return i + 2, 0
			}
		}
	}
}

// skipEmptyLines returns the length of the empty lines (CRLF or LF) that
// start buf, which a server ignores before a request line (RFC 9112
// section 2.2). It stops before a final CR whose LF has not arrived, and
// fails on a CR followed by anything but LF.
func skipEmptyLines(buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		switch buf[n] {
		case '\n':
			n++
		case '\r':
			if n+1 == len(buf) {
				return n, nil
			}
			if buf[n+1] != '\n' {
				return n, badRequest("bare CR before the request line")
			}
			n += 2
		default:
			return n, nil
		}
	}
	return n, nil
}

// nextLine splits the first line off s, without its line ending. ok is
// false when s holds no LF.
func nextLine(s string) (line, rest string, ok bool) {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		return "", "", false
	}
	line, rest = s[:i], s[i+1:]
	if line != "" && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, rest, true
}

// parseHead parses a complete request head, as delimited by scanHead, into
// req and info. Every string it stores is a substring of head. req.Header
// must be empty. The error is a *StatusError.
func parseHead(head string, req *message.Request, info *headInfo, lim limits) error {
	*info = headInfo{}
	line, rest, ok := nextLine(head)
	if !ok {
		return badRequest("incomplete request head")
	}
	if err := parseRequestLine(line, req, info); err != nil {
		return err
	}
	for {
		if rest == "" {
			return badRequest("incomplete request head")
		}
		if end, ok := cutLineEnd(rest); ok {
			rest = end
			break
		}
		if req.Header.Len() == lim.maxFields {
			return refuse(431, "too many header fields")
		}
		var err error
		if rest, err = parseField(rest, req, info); err != nil {
			return err
		}
	}
	if rest != "" {
		return badRequest("bytes after the end of the head")
	}
	return setHost(req, info)
}

// cutLineEnd reports whether s starts with a line ending (CRLF or LF), and
// returns what follows it.
func cutLineEnd(s string) (rest string, ok bool) {
	switch {
	case strings.HasPrefix(s, "\r\n"):
		return s[2:], true
	case strings.HasPrefix(s, "\n"):
		return s[1:], true
	}
	return s, false
}

// parseRequestLine parses "method SP request-target SP HTTP-version"
// (RFC 9112 section 3) with exactly one SP between the parts.
func parseRequestLine(line string, req *message.Request, info *headInfo) error {
	n := asm.TokenEnd(line)
	if n == 0 || n == len(line) || line[n] != ' ' {
		return badRequest("malformed method in request line")
	}
	method, rest := line[:n], line[n+1:]
	target, version, ok := strings.Cut(rest, " ")
	if !ok || target == "" {
		return badRequest("malformed request line")
	}
	minor, err := parseVersion(version)
	if err != nil {
		return err
	}
	req.Method = method
	req.Proto = message.HTTP1
	req.ProtoMinor = minor
	return parseTarget(method, target, req, info)
}

// parseVersion parses HTTP-version = "HTTP/" DIGIT "." DIGIT (RFC 9112
// section 2.3; the name is case-sensitive). Major versions other than 1
// get 505; HTTP/1.x above 1.1 is served as 1.1 (RFC 9110 section 2.5).
func parseVersion(v string) (minor int, err error) {
	if len(v) != 8 || v[:5] != "HTTP/" || v[6] != '.' || !isDigit(v[5]) || !isDigit(v[7]) {
		return 0, badRequest("malformed HTTP version")
	}
	if v[5] != '1' {
		return 0, refuse(505, "unsupported HTTP major version")
	}
	if v[7] == '0' {
		return 0, nil
	}
	return 1, nil
}

// isDigit reports whether c is an ASCII digit.
func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// parseTarget parses the request-target (RFC 9112 section 3.2) into
// req.Path and req.RawQuery, without decoding anything.
func parseTarget(method, target string, req *message.Request, info *headInfo) error {
	if err := checkTarget(target); err != nil {
		return err
	}
	switch {
	case method == "CONNECT":
		if !validAuthorityForm(target) {
			return badRequest("CONNECT without an authority-form target")
		}
		return refuse(501, "CONNECT is not supported")
	case target[0] == '/':
		req.Path, req.RawQuery = splitQuery(target)
		return nil
	case target == "*":
		if method != "OPTIONS" {
			return badRequest("asterisk-form target outside OPTIONS")
		}
		req.Path = "*"
		return nil
	}
	return parseAbsoluteForm(method, target, req, info)
}

// parseAbsoluteForm parses an absolute-form target ("http://host/path?q").
// Only the http and https schemes are accepted, and userinfo is an error
// (RFC 9110 section 4.2.4).
func parseAbsoluteForm(method, target string, req *message.Request, info *headInfo) error {
	scheme, rest, ok := strings.Cut(target, "://")
	if !ok || !message.EqualFold(scheme, "http") && !message.EqualFold(scheme, "https") {
		return badRequest("request-target is in no known form")
	}
	end := strings.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	authority, pathQuery := rest[:end], rest[end:]
	if authority == "" || strings.IndexByte(authority, '@') >= 0 || !validHost(authority) {
		return badRequest("invalid authority in absolute-form target")
	}
	info.absolute, info.authority = true, authority
	switch {
	case pathQuery == "" && method == "OPTIONS":
		req.Path = "*" // RFC 9112 section 3.2.4
	case pathQuery == "" || pathQuery[0] == '?':
		req.Path = "/"
		req.RawQuery = strings.TrimPrefix(pathQuery, "?")
	default:
		req.Path, req.RawQuery = splitQuery(pathQuery)
	}
	return nil
}

// checkTarget checks that every byte of a request-target may appear in one
// (isTargetByte). asm.CleanPathEnd skips the runs of clean path bytes, all
// of which may; the bytes it stops at ("%", "?", obs-text, ...) are judged
// one by one.
func checkTarget(target string) error {
	for i := 0; i < len(target); i++ {
		if i += asm.CleanPathEnd(target[i:]); i == len(target) {
			break
		}
		if !isTargetByte(target[i]) {
			return badRequest("invalid byte in request-target")
		}
	}
	return nil
}

// splitQuery splits an origin-form target at its first "?".
func splitQuery(target string) (path, query string) {
	path, query, _ = strings.Cut(target, "?")
	return path, query
}

// parseField parses the field line, "name: value" (RFC 9112 section 5),
// that starts s, adds it to req.Header and returns what follows its line
// ending. The name ends at the first byte that is not a token character
// (asm.TokenEnd), which must be the colon; the value at the first control
// byte (asm.FieldValueEnd), which must start the line ending: one pass
// finds the end of the line and validates the value.
func parseField(s string, req *message.Request, info *headInfo) (rest string, err error) {
	if s[0] == ' ' || s[0] == '\t' {
		// obs-fold, or whitespace before the first field line
		// (RFC 9112 sections 2.2 and 5.2): rejected.
		return s, badRequest("obsolete line folding")
	}
	n := asm.TokenEnd(s)
	if n == len(s) || s[n] != ':' {
		return s, fieldNameError(s)
	}
	if n == 0 {
		return s, badRequest("invalid field name")
	}
	name, v := s[:n], s[n+1:]
	e := asm.FieldValueEnd(v)
	value := v[:e]
	if rest, ok := cutLineEnd(v[e:]); ok {
		value = trimOWS(value)
		req.Header.Add(name, value)
		info.note(name, value)
		return rest, nil
	}
	if e == len(v) {
		return s, badRequest("incomplete request head")
	}
	return s, badRequest("invalid byte in field value")
}

// fieldNameError says what is wrong with a field line whose name is not
// followed by a colon: no colon on the line at all, or a byte before it
// that is not a token character (whitespace between name and colon among
// them, RFC 9112 section 5.1).
func fieldNameError(s string) error {
	line, _, _ := strings.Cut(s, "\n")
	if strings.IndexByte(line, ':') < 0 {
		return badRequest("field line without a colon")
	}
	return badRequest("invalid field name")
}

// note records the fields that frame the request or steer the connection.
func (info *headInfo) note(name, value string) {
	switch len(name) {
	case len("host"):
		if message.EqualFold(name, "host") {
			if info.hosts == 0 {
				info.host = value
			}
			info.hosts++
		}
	case len("expect"):
		if message.EqualFold(name, "expect") {
			if info.expects == 0 {
				info.expect = value
			}
			info.expects++
		}
	case len("connection"):
		if message.EqualFold(name, "connection") {
			info.noteConnection(value)
		}
	case len("content-length"):
		if message.EqualFold(name, "content-length") {
			if info.lengths == 0 {
				info.length = value
			}
			info.lengths++
		}
	case len("transfer-encoding"):
		if message.EqualFold(name, "transfer-encoding") {
			if info.codings == 0 {
				info.coding = value
			}
			info.codings++
		}
	}
}

// noteConnection records the options of a Connection field that matter to
// the connection's persistence (RFC 9112 section 9.3) and to a protocol
// switch (RFC 9110 section 7.8).
func (info *headInfo) noteConnection(value string) {
	for value != "" {
		var opt string
		opt, value, _ = strings.Cut(value, ",")
		opt = trimOWS(opt)
		switch {
		case message.EqualFold(opt, "close"):
			info.close = true
		case message.EqualFold(opt, "keep-alive"):
			info.keepAlive = true
		case message.EqualFold(opt, "upgrade"):
			info.upgrade = true
		}
	}
}

// setHost checks the Host field (RFC 9112 section 3.2: an HTTP/1.1 request
// without one, or with more than one, or with an invalid one, gets 400) and
// sets req.Host, from the target's authority when there is one.
func setHost(req *message.Request, info *headInfo) error {
	switch {
	case info.hosts > 1:
		return badRequest("more than one Host field")
	case info.hosts == 0 && req.ProtoMinor == 1:
		return badRequest("HTTP/1.1 request without Host")
	case info.hosts == 1 && !validHost(info.host):
		return badRequest("invalid Host")
	}
	if info.absolute {
		req.Host = info.authority
	} else {
		req.Host = info.host
	}
	return nil
}

// validHost reports whether s is uri-host [ ":" port ] (RFC 3986 section
// 3.2) or empty, which RFC 9112 section 3.2 allows in Host when the target
// has no authority.
func validHost(s string) bool {
	if s == "" {
		return true
	}
	host, port, hasPort := s, "", false
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 || !validIPLiteral(s[1:end]) {
			return false
		}
		host = s[:end+1]
		switch rest := s[end+1:]; {
		case rest == "":
		case rest[0] == ':':
			port, hasPort = rest[1:], true
		default:
			return false
		}
	} else {
		if i := strings.LastIndexByte(s, ':'); i >= 0 {
			host, port, hasPort = s[:i], s[i+1:], true
		}
		if !validRegName(host) {
			return false
		}
	}
	return host != "" && (!hasPort || validPort(port))
}

// validRegName reports whether s is a non-empty reg-name or IPv4 address:
// unreserved, sub-delims and pct-encoded octets.
func validRegName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !inMask(c, hostLo, hostHi) {
			return false
		}
		if c == '%' && (i+2 >= len(s) || hexValue(s[i+1]) < 0 || hexValue(s[i+2]) < 0) {
			return false
		}
	}
	return true
}

// validIPLiteral reports whether s, the inside of "[...]", is an IPv6
// address without zone or an IPvFuture (RFC 3986 section 3.2.2).
func validIPLiteral(s string) bool {
	if s != "" && (s[0] == 'v' || s[0] == 'V') {
		ver, rest, ok := strings.Cut(s[1:], ".")
		if !ok || ver == "" || rest == "" {
			return false
		}
		for i := 0; i < len(ver); i++ {
			if hexValue(ver[i]) < 0 {
				return false
			}
		}
		for i := 0; i < len(rest); i++ {
			if c := rest[i]; c != ':' && (c == '%' || !inMask(c, hostLo, hostHi)) {
				return false
			}
		}
		return true
	}
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is6() && a.Zone() == ""
}

// validPort reports whether s is empty (RFC 3986 allows "host:") or a
// decimal port number up to 65535.
func validPort(s string) bool {
	if len(s) > 5 {
		return false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n <= 65535
}

// validAuthorityForm reports whether s is authority-form, uri-host ":"
// port (RFC 9112 section 3.2.3), as CONNECT requires.
func validAuthorityForm(s string) bool {
	i := strings.LastIndexByte(s, ':')
	return i > 0 && i < len(s)-1 && validHost(s) && strings.IndexByte(s, '@') < 0
}
