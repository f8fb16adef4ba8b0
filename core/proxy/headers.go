package proxy

import (
	"crypto/rand"
	"encoding/base64"
	"net/netip"
	"strings"
	"unsafe"

	"github.com/anx-gateway/anx/core/message"
)

// Hop-by-hop fields (RFC 9110 section 7.6.1) that never cross the proxy,
// whichever way: besides these, every field that Connection names.
var hopByHop = [...]string{
	"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Transfer-Encoding", "Upgrade",
	"Proxy-Authenticate", "Proxy-Authorization",
}

// isHopByHop reports whether name is one of the fixed hop-by-hop fields.
func isHopByHop(name string) bool {
	for _, h := range hopByHop {
		if message.EqualFold(name, h) {
			return true
		}
	}
	return false
}

// namedByConnection reports whether a Connection field of h names name.
func namedByConnection(h *message.Header, name string) bool {
	for v := range h.Values("Connection") {
		for opt := range strings.SplitSeq(v, ",") {
			if message.EqualFold(strings.TrimSpace(opt), name) {
				return true
			}
		}
	}
	return false
}

// copyEndToEnd appends to dst the fields of src that are end-to-end: not
// hop-by-hop, not named by src's Connection, and none of skip.
func copyEndToEnd(dst, src *message.Header, skip ...string) {
	copyFields(dst, src, skip, nil)
}

// copyFields is copyEndToEnd leaving out the names of both skip lists.
func copyFields(dst, src *message.Header, skip, skipToo []string) {
	hasConnection := src.Has("Connection")
	for _, f := range src.Fields() {
		if isHopByHop(f.Name) || hasConnection && namedByConnection(src, f.Name) || oneOf(f.Name, skip) || oneOf(f.Name, skipToo) {
			continue
		}
		dst.Add(f.Name, f.Value)
	}
}

func oneOf(name string, names []string) bool {
	for _, n := range names {
		if message.EqualFold(name, n) {
			return true
		}
	}
	return false
}

// wantsTrailers reports whether the client's TE field accepts trailers
// (gRPC sends "TE: trailers"; an HTTP/2 upstream wants it passed on).
func wantsTrailers(h *message.Header) bool {
	for v := range h.Values("TE") {
		for opt := range strings.SplitSeq(v, ",") {
			name, _, _ := strings.Cut(opt, ";")
			if message.EqualFold(strings.TrimSpace(name), "trailers") {
				return true
			}
		}
	}
	return false
}

// upgradeOf returns the protocol a request asks to switch to: an HTTP/1.1
// request's Upgrade field's value when Connection names "upgrade", an
// extended CONNECT's protocol (RFC 8441), else "".
func upgradeOf(r *message.Request) string {
	if r.Protocol != "" && r.Method == "CONNECT" {
		return r.Protocol
	}
	if r.Proto != message.HTTP1 || r.ProtoMinor < 1 || !namedByConnection(&r.Header, "upgrade") {
		return ""
	}
	return r.Header.Get("Upgrade")
}

// apply makes the edits of ops on h: deletes, then sets, then adds.
func (ops *HeaderOps) apply(h *message.Header) {
	for _, name := range ops.Delete {
		h.Del(name)
	}
	for _, f := range ops.Set {
		h.Set(f.Name, f.Value)
	}
	for _, f := range ops.Add {
		h.Add(f.Name, f.Value)
	}
}

// trusted reports whether the client at addr is a proxy whose forwarding
// fields anx keeps.
func (h *Handler) trusted(addr netip.Addr) bool {
	return message.IsTrusted(addr.Unmap(), h.cfg.TrustedProxies)
}

// forwardingFields returns the fields that say who the client was.
func forwardingFields() []string {
	return []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Forwarded"}
}

// edgeFields returns the request fields the proxy never passes on as
// they came: the transport writes Host and the framing itself, Expect is
// answered here (the front end sends 100 Continue when the proxy starts
// reading the body, as nginx does), and X-Request-ID is set here (see
// requestID).
func edgeFields() []string { return []string{"Host", "Content-Length", "Expect", "X-Request-ID"} }

// requestID returns the id of r, which goes upstream as X-Request-ID and
// into the access log: the one r has, else the X-Request-ID of a trusted
// proxy, else one made here. It sets it in r's Trace; an untrusted
// client's X-Request-ID is dropped.
func requestID(r *message.Request, trusted bool) string {
	if r.Trace.ID != "" {
		return r.Trace.ID
	}
	if trusted {
		if id := r.Header.Get("X-Request-ID"); id != "" {
			r.Trace.ID = id
			return id
		}
	}
	return r.Trace.MakeID()
}

// requestHeader builds the end-to-end fields of the request that goes
// upstream: the client's fields without hop-by-hop ones, the request id,
// the forwarding fields (kept and appended to only for a trusted client),
// then the route's edits.
func (h *Handler) requestHeader(dst *message.Header, r *message.Request, h2 bool, scratch *[64]byte) {
	trusted := h.trusted(r.RemoteAddr.Addr())
	var forwarding []string
	if !trusted {
		forwarding = forwardingFields()
	}
	copyFields(dst, &r.Header, edgeFields(), forwarding)
	if h2 && wantsTrailers(&r.Header) {
		dst.Add("TE", "trailers")
	}
	// The address, written into scratch, lives as long as the exchange:
	// the transport has sent the head by the time it is reused.
	ip := r.RemoteAddr.Addr().Unmap().AppendTo(scratch[:0])
	client := unsafe.String(unsafe.SliceData(ip), len(ip))
	proto := "http"
	if r.TLS {
		proto = "https"
	}
	dst.Add("X-Request-ID", requestID(r, trusted))
	appendField(dst, "X-Forwarded-For", client)
	setIfAbsent(dst, "X-Forwarded-Proto", proto)
	setIfAbsent(dst, "X-Forwarded-Host", r.Host)
	if h.cfg.Forwarded {
		appendField(dst, "Forwarded", forwardedElement(r.RemoteAddr.Addr().Unmap(), proto, r.Host))
	}
	h.cfg.RequestHeaders.apply(dst)
}

// appendField adds value to the last field called name as a list member,
// or adds the field.
func appendField(h *message.Header, name, value string) {
	fields := h.Fields()
	for i := len(fields) - 1; i >= 0; i-- {
		if message.EqualFold(fields[i].Name, name) {
			fields[i].Value += ", " + value
			return
		}
	}
	h.Add(name, value)
}

func setIfAbsent(h *message.Header, name, value string) {
	if !h.Has(name) {
		h.Add(name, value)
	}
}

// forwardedElement is one RFC 7239 element: for, proto and host, quoted
// where the syntax needs it (IPv6 addresses, hosts with a port).
func forwardedElement(client netip.Addr, proto, host string) string {
	forNode := client.String()
	if client.Is6() {
		forNode = `"[` + forNode + `]"`
	}
	if strings.ContainsAny(host, ":[]") {
		host = `"` + host + `"`
	}
	return "for=" + forNode + ";proto=" + proto + ";host=" + host
}

// responseHeader copies the upstream response's end-to-end fields into
// the client's response and applies the route's edits. The copies are
// strings of their own (one allocation for all): the upstream's fields
// point into memory that its transport reuses once the response is
// recycled, while a front end may write the head after the handler
// returns (x/net/http2 and quic-go encode it with the first DATA, or at
// the end for a response without content).
func (h *Handler) responseHeader(dst, src *message.Header) {
	from := dst.Len()
	copyEndToEnd(dst, src)
	ownStrings(dst.Fields()[from:])
	h.cfg.ResponseHeaders.apply(dst)
}

// ownStrings makes the names and values of fields substrings of one new
// string, so that they no longer share memory with anything else.
func ownStrings(fields []message.Field) {
	n := 0
	for _, f := range fields {
		n += len(f.Name) + len(f.Value)
	}
	var b strings.Builder
	b.Grow(n)
	for _, f := range fields {
		b.WriteString(f.Name)
		b.WriteString(f.Value)
	}
	all := b.String()
	for i := range fields {
		name, value := len(fields[i].Name), len(fields[i].Value)
		fields[i].Name, fields[i].Value = all[:name], all[name:name+value]
		all = all[name+value:]
	}
}

// asUpgrade turns an extended CONNECT (RFC 8441, RFC 9220) into the
// HTTP/1.1 upgrade an upstream understands: a GET with Upgrade, and for
// a WebSocket the Sec-WebSocket-Key that HTTP/2 and HTTP/3 clients do not
// send (RFC 8441 section 5), made here.
func asUpgrade(out *outRequest, header *message.Header) {
	out.Method = "GET"
	if message.EqualFold(out.Upgrade, "websocket") && !header.Has("Sec-WebSocket-Key") {
		var key [16]byte
		rand.Read(key[:])
		header.Set("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString(key[:]))
	}
}
