package h2

import (
	"strconv"
	"strings"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/anx-gateway/anx/core/message"
)

// maxBlockBytes bounds a header block's encoded size, CONTINUATION frames
// included: past it the client is flooding (April 2024's CONTINUATION
// floods) and the connection ends with ENHANCE_YOUR_CALM. Below it an
// oversized list is answered 431. It is four times the header list limit,
// and at least 64 KiB, so that a list a little over the limit gets its 431;
// decoding costs time in proportion to it and no memory.
func (s *Server) maxBlockBytes() int { return max(4*s.headerListLimit(), 64<<10) }

// onHeaders opens a stream (or carries a stream's trailers) and starts
// decoding its header block.
func (c *conn) onHeaders(f frameHeader, payload []byte) error {
	if f.streamID == 0 {
		return connError{http2.ErrCodeProtocol, "HEADERS on stream 0"}
	}
	if f.streamID%2 == 0 {
		return connError{http2.ErrCodeProtocol, "HEADERS on a server stream"}
	}
	block, ok := unpad(f, payload)
	if !ok {
		return connError{http2.ErrCodeProtocol, "HEADERS padding too long"}
	}
	if f.has(flagPriority) {
		if len(block) < 5 {
			return connError{http2.ErrCodeFrameSize, "HEADERS too short for its priority"}
		}
		selfDependent := dependsOnItself(f.streamID, block)
		block = block[5:]
		if selfDependent && f.streamID > c.maxStreamID {
			return c.refuseSelfDependent(f, block)
		}
	}
	if f.streamID <= c.maxStreamID {
		return c.trailers(f, block)
	}
	c.maxStreamID = f.streamID
	s, err := c.open(f)
	if err != nil {
		return err
	}
	c.startBlock(s, f.streamID)
	return c.headerFragment(f, block)
}

// refuseSelfDependent resets a stream whose HEADERS makes it depend on
// itself (RFC 9113 section 5.3.1), after decoding its block for the
// HPACK state.
func (c *conn) refuseSelfDependent(f frameHeader, block []byte) error {
	c.maxStreamID = f.streamID
	c.startBlock(nil, f.streamID)
	if err := c.headerFragment(f, block); err != nil {
		return err
	}
	c.resetStream(f.streamID, http2.ErrCodeProtocol)
	return c.abuse.reset(c)
}

// open makes the stream a HEADERS frame opens, or nil when it is refused
// (too many streams, or after GOAWAY); a refused stream's block is still
// decoded, for the HPACK state.
func (c *conn) open(f frameHeader) (*stream, error) {
	if c.goAwaySent {
		return nil, nil
	}
	if len(c.streams) >= int(c.srv.maxConcurrentStreams()) {
		c.resetStream(f.streamID, http2.ErrCodeRefusedStream)
		return nil, c.abuse.refuse(c)
	}
	c.lastContent = c.c.Net().Now()
	s := c.srv.newStream(c, f.streamID)
	s.in.remoteDone = f.has(flagEndStream)
	c.streams = append(c.streams, s)
	return s, nil
}

// trailers handles a HEADERS frame on a stream already opened: the
// request's trailer fields, which must end the stream (RFC 9113 section
// 8.1), or a frame on a closed stream.
func (c *conn) trailers(f frameHeader, block []byte) error {
	s := c.stream(f.streamID)
	if (s == nil || s.send.reset && !s.send.peerReset) && c.recentlyReset(f.streamID) {
		// Sent before the client knew of our RST_STREAM: decoded for the
		// HPACK state, then ignored (RFC 9113 section 5.1, "closed").
		c.startBlock(nil, f.streamID)
		return c.headerFragment(f, block)
	}
	if s == nil || s.in.remoteDone {
		// RFC 9113 section 5.1: HEADERS on a stream the client closed.
		return connError{http2.ErrCodeStreamClosed, "HEADERS on a closed stream"}
	}
	if !f.has(flagEndStream) {
		return connError{http2.ErrCodeProtocol, "trailers without END_STREAM"}
	}
	s.in.inTrailers = true
	s.in.remoteDone = true
	c.startBlock(s, f.streamID)
	return c.headerFragment(f, block)
}

// startBlock begins decoding a header block for s (nil: decode and drop).
func (c *conn) startBlock(s *stream, id uint32) {
	c.block, c.blockID, c.blockBytes = s, id, 0
	c.abuse.continuations = 0
}

// onContinuation carries on a header block.
func (c *conn) onContinuation(f frameHeader, payload []byte) error {
	if c.blockID == 0 || f.streamID != c.blockID {
		return connError{http2.ErrCodeProtocol, "CONTINUATION without a header block"}
	}
	if err := c.abuse.continuation(c, len(payload)); err != nil {
		return err
	}
	return c.headerFragment(f, payload)
}

// headerFragment decodes a fragment of the header block and, at its
// end, acts on the request.
func (c *conn) headerFragment(f frameHeader, fragment []byte) error {
	c.blockBytes += len(fragment)
	if c.blockBytes > c.srv.maxBlockBytes() {
		return connError{http2.ErrCodeEnhanceYourCalm, "header block too large"}
	}
	if _, err := c.dec.Write(fragment); err != nil {
		return connError{http2.ErrCodeCompression, err.Error()}
	}
	if !f.has(flagEndHeaders) {
		return nil
	}
	if err := c.dec.Close(); err != nil {
		return connError{http2.ErrCodeCompression, err.Error()}
	}
	s := c.block
	c.block, c.blockID = nil, 0
	if s == nil {
		return nil
	}
	if s.in.inTrailers {
		return c.endTrailers(s)
	}
	return c.endRequestHead(s)
}

// onField receives each decoded field of the block in progress.
func (c *conn) onField(f hpack.HeaderField) {
	s := c.block
	if s == nil {
		return
	}
	s.in.headerBytes += int(f.Size())
	if s.in.headerBytes > c.srv.headerListLimit() {
		s.in.tooLarge = true
		return
	}
	if s.in.malformed != "" {
		return
	}
	if s.in.inTrailers {
		s.in.malformed = s.trailerField(f)
		return
	}
	s.in.malformed = s.requestField(f)
}

// requestField checks one field of a request head (RFC 9113 sections
// 8.2 and 8.3) and stores it; it returns why the request is malformed, or
// "".
func (s *stream) requestField(f hpack.HeaderField) string {
	if why := checkField(f); why != "" {
		return why
	}
	if f.IsPseudo() {
		return s.pseudoField(f)
	}
	s.in.regularSeen = true
	switch f.Name {
	case "content-length":
		n, err := strconv.ParseInt(f.Value, 10, 64)
		if err != nil || n < 0 || s.in.contentLength >= 0 && s.in.contentLength != n {
			return "bad content-length"
		}
		s.in.contentLength = n
	case "te":
		if f.Value != "trailers" {
			return "te other than trailers"
		}
	case "host":
		if s.req.Host == "" {
			s.req.Host = f.Value
		}
	case "cookie":
		s.in.cookies++
	case "expect":
		s.in.expectContinue = message.EqualFold(f.Value, "100-continue")
	}
	s.req.Header.Add(f.Name, f.Value)
	return ""
}

// pseudoField stores a request pseudo-header field.
func (s *stream) pseudoField(f hpack.HeaderField) string {
	if s.in.regularSeen {
		return "pseudo-header field after a regular one"
	}
	var seen *bool
	switch f.Name {
	case ":method":
		s.req.Method, seen = f.Value, &s.in.hasMethod
	case ":scheme":
		s.in.scheme, seen = f.Value, &s.in.hasScheme
	case ":path":
		if f.Value == "" {
			return "empty :path"
		}
		if !validPath(f.Value) {
			return "invalid :path"
		}
		path, query, _ := strings.Cut(f.Value, "?")
		s.req.Path, s.req.RawQuery, seen = path, query, &s.in.hasPath
	case ":authority":
		s.req.Host, seen = f.Value, &s.in.hasAuthority
	case ":protocol":
		s.in.protocol, seen = f.Value, &s.in.hasProtocol
	default:
		return "unknown pseudo-header field " + f.Name
	}
	if *seen {
		return "repeated " + f.Name
	}
	*seen = true
	return ""
}

// trailerField stores one field of the request's trailer section.
func (s *stream) trailerField(f hpack.HeaderField) string {
	if why := checkField(f); why != "" {
		return why
	}
	if f.IsPseudo() {
		return "pseudo-header field in trailers"
	}
	s.trailer.Add(f.Name, f.Value)
	return ""
}

// checkField applies the rules every field obeys (RFC 9113 section
// 8.2): lower-case valid names, no connection-specific fields, values
// without NUL, CR, LF or surrounding whitespace.
func checkField(f hpack.HeaderField) string {
	name := f.Name
	if f.IsPseudo() {
		name = name[1:]
	}
	if name == "" {
		return "empty field name"
	}
	for i := 0; i < len(name); i++ {
		if !tokenLower[name[i]] {
			return "invalid field name " + strconv.Quote(f.Name)
		}
	}
	switch f.Name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		return "connection-specific field " + f.Name
	}
	v := f.Value
	for i := 0; i < len(v); i++ {
		if b := v[i]; b == 0 || b == '\r' || b == '\n' {
			return "invalid field value for " + f.Name
		}
	}
	if v != "" && (isSpace(v[0]) || isSpace(v[len(v)-1])) {
		return "field value with surrounding whitespace for " + f.Name
	}
	return ""
}

// validPath reports whether a :path is an origin-form target ("/" and
// URI characters, each "%" followed by two hex digits) or "*"
// (RFC 9113 section 8.3.1, RFC 3986 section 3.3).
func validPath(p string) bool {
	if p == "*" {
		return true
	}
	if p[0] != '/' {
		return false
	}
	for i := 0; i < len(p); i++ {
		switch b := p[i]; {
		case b <= ' ' || b >= 0x7f || b == '#':
			return false
		case b == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return false
			}
		}
	}
	return true
}

func isHex(b byte) bool { return '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F' }

func isSpace(b byte) bool { return b == ' ' || b == '\t' }

// tokenLower marks the bytes a field name may hold in HTTP/2: a token's
// (RFC 9110 section 5.6.2) without upper-case letters.
var tokenLower = func() (t [256]bool) {
	for _, b := range []byte("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz") {
		t[b] = true
	}
	return t
}()

// endRequestHead checks the complete request head and hands the request
// to its handler, or answers the stream's fault.
func (c *conn) endRequestHead(s *stream) error {
	if s.in.malformed == "" {
		s.in.malformed = s.checkPseudo(c)
	}
	switch {
	case s.in.malformed != "":
		c.srv.logger().Debug("h2: malformed request", "remote", c.c.RemoteAddr(), "stream", s.id, "reason", s.in.malformed)
		return c.streamError(s, http2.ErrCodeProtocol)
	case s.in.tooLarge:
		// An oversized list costs its decoding every time: the answers
		// count as resets do (an HPACK bomb repeats them).
		s.answer(431)
		return c.abuse.reset(c)
	case c.srv.MaxBodyBytes > 0 && s.in.contentLength > c.srv.MaxBodyBytes:
		s.answer(413)
		return nil
	case s.in.remoteDone && s.in.contentLength > 0:
		return c.streamError(s, http2.ErrCodeProtocol) // content-length but no content
	}
	c.dispatch(s)
	return nil
}

// checkPseudo checks the pseudo-header fields of a complete request
// (RFC 9113 section 8.3.1, RFC 8441 section 4).
func (s *stream) checkPseudo(c *conn) string {
	if !s.in.hasMethod {
		return "no :method"
	}
	if s.req.Method == "CONNECT" && !s.in.hasProtocol {
		if s.in.hasScheme || s.in.hasPath || !s.in.hasAuthority {
			return "CONNECT with :scheme or :path, or without :authority"
		}
		return ""
	}
	if s.in.hasProtocol && (s.req.Method != "CONNECT" || !c.extendedConnect) {
		return ":protocol without extended CONNECT"
	}
	if !s.in.hasScheme || !s.in.hasPath {
		return "no :scheme or :path"
	}
	return ""
}

// endTrailers hands the request's trailer fields to the handler reading
// its content.
func (c *conn) endTrailers(s *stream) error {
	if s.in.malformed != "" {
		return c.streamError(s, http2.ErrCodeProtocol)
	}
	return s.endContent(c)
}
