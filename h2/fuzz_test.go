package h2

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/anx-gateway/anx/core/message"
)

// FuzzFrameHeader checks the frame header reader and unpad against
// x/net/http2's Framer, the reference: the same header, and for DATA and
// HEADERS the same content or the same refusal of bad padding.
func FuzzFrameHeader(f *testing.F) {
	f.Add([]byte{0, 0, 5, 0, 8, 0, 0, 0, 1, 2, 'a', 'b', 0, 0})
	f.Add([]byte{0, 0, 3, 1, 0x0c, 0x80, 0, 0, 3, 9, 1, 2})
	f.Add([]byte{0, 0, 0, 0, 8, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < frameHeaderLen {
			return
		}
		got := readFrameHeader(b)
		want, err := http2.ReadFrameHeader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if got.length != want.Length || got.typ != want.Type || got.flags != want.Flags || got.streamID != want.StreamID {
			t.Fatalf("header %+v, x/net %+v", got, want)
		}
		if (got.typ != http2.FrameData && got.typ != http2.FrameHeaders) || got.streamID == 0 ||
			int(got.length) > len(b)-frameHeaderLen || got.has(flagPriority) {
			return
		}
		payload := b[frameHeaderLen : frameHeaderLen+int(got.length)]
		data, ok := unpad(got, payload)
		fr := http2.NewFramer(io.Discard, bytes.NewReader(b))
		frame, err := fr.ReadFrame()
		if ok != (err == nil) {
			t.Fatalf("unpad ok=%v, x/net err=%v", ok, err)
		}
		if !ok {
			return
		}
		var ref []byte
		switch fm := frame.(type) {
		case *http2.DataFrame:
			ref = fm.Data()
		case *http2.HeadersFrame:
			ref = fm.HeaderBlockFragment()
		}
		if !bytes.Equal(data, ref) {
			t.Fatalf("unpad %q, x/net %q", data, ref)
		}
	})
}

// fuzzBlocks are header blocks the connection fuzzer picks from, so that
// its HEADERS are not all compression errors: a GET, a POST with content,
// an extended CONNECT, and malformed ones.
func fuzzBlocks() [][]byte {
	var out [][]byte
	for _, fields := range [][]string{
		{":method", "GET", ":scheme", "http", ":path", "/", ":authority", "a"},
		{":method", "POST", ":scheme", "http", ":path", "/up", ":authority", "a", "content-length", "3"},
		{":method", "CONNECT", ":protocol", "websocket", ":scheme", "http", ":path", "/ws", ":authority", "a"},
		{":method", "GET", ":path", "/", "Upper", "x"},
		{"x-trailer", "1"},
	} {
		var b bytes.Buffer
		enc := hpack.NewEncoder(&b)
		for i := 0; i+1 < len(fields); i += 2 {
			enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
		}
		out = append(out, b.Bytes())
	}
	return out
}

// framesFromFuzz turns fuzz input into whole frames: each is a type, flags,
// a stream id (0 to 8), a length and that many payload bytes; a HEADERS or
// CONTINUATION payload whose first byte is below 5 is replaced by the
// fuzzBlocks block it names.
func framesFromFuzz(in []byte, blocks [][]byte) []byte {
	var out []byte
	for len(in) >= 4 {
		typ, flags, id, n := http2.FrameType(in[0]%11), http2.Flags(in[1]), uint32(in[2]%9), int(in[3])
		in = in[4:]
		n = min(n, len(in))
		payload := in[:n]
		in = in[n:]
		if (typ == http2.FrameHeaders || typ == http2.FrameContinuation) && n > 0 && int(payload[0]) < len(blocks) {
			payload = blocks[payload[0]]
			if typ == http2.FrameHeaders {
				flags &^= flagPadded | flagPriority
			}
		}
		out = appendFrameHeader(out, len(payload), typ, flags, id)
		out = append(out, payload...)
	}
	return out
}

// fuzzRoutes sends GETs to a handler on the loop and the rest to one
// that reads their content off it, upgrading extended CONNECTs.
type fuzzRoutes struct{}

func (fuzzRoutes) HandlerFor(r *message.Request) message.Handler {
	if r.Method == "GET" {
		return okOnLoop{}
	}
	return message.HandlerFunc(readAll)
}

func (rt fuzzRoutes) Serve(w message.ResponseWriter, r *message.Request) {
	rt.HandlerFor(r).Serve(w, r)
}

// okOnLoop answers "ok" on the loop.
type okOnLoop struct{}

func (okOnLoop) NonBlocking() bool { return true }

func (okOnLoop) Serve(w message.ResponseWriter, r *message.Request) {
	w.Header().Set("Content-Length", "2")
	w.Write([]byte("ok"))
}

// readAll reads the request's content and answers "ok", or upgrades an
// extended CONNECT into an echo.
func readAll(w message.ResponseWriter, r *message.Request) {
	if r.Protocol != "" {
		echoTunnel(w, r)
		return
	}
	io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Length", "2")
	w.Write([]byte("ok"))
}

// FuzzConnection sends random frame sequences after a valid preface: the
// server must not panic, must end every stream once the client is gone
// (Streams back to zero) and must go on serving other connections.
func FuzzConnection(f *testing.F) {
	blocks := fuzzBlocks()
	seed := func(frames ...[]byte) []byte { return bytes.Join(frames, nil) }
	fr := func(typ http2.FrameType, flags http2.Flags, id byte, payload ...byte) []byte {
		return append([]byte{byte(typ), byte(flags), id, byte(len(payload))}, payload...)
	}
	f.Add(seed(fr(http2.FrameHeaders, 0x5, 1, 0)))
	f.Add(seed(fr(http2.FrameHeaders, 0x4, 1, 1), fr(http2.FrameData, 0x1, 1, 'a', 'b', 'c')))
	f.Add(seed(fr(http2.FrameHeaders, 0x4, 1, 1), fr(http2.FrameRSTStream, 0, 1, 0, 0, 0, 8)))
	f.Add(seed(fr(http2.FrameHeaders, 0x4, 3, 2), fr(http2.FrameData, 0, 3, 'h', 'i'), fr(http2.FrameData, 0x1, 3)))
	f.Add(seed(fr(http2.FrameHeaders, 0x0, 1, 0), fr(http2.FrameContinuation, 0x4, 1, 4)))
	f.Add(seed(fr(http2.FrameWindowUpdate, 0, 0, 0, 0, 0, 0), fr(http2.FrameSettings, 0, 0, 0, 4, 0, 0, 0, 0)))
	srv := &Server{Handler: fuzzRoutes{}, ExtendedConnect: yes, ReadTimeout: time.Second}
	addr := startH2C(f, srv)
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(hangTimeout))
		var hello []byte
		hello = append(hello, http2.ClientPreface...)
		hello = appendFrameHeader(hello, 0, http2.FrameSettings, 0, 0)
		hello = append(hello, framesFromFuzz(in, blocks)...)
		read := make(chan struct{})
		go func() { // reads while the frames go, which may make the server write a lot
			io.Copy(io.Discard, c) // until the server closes
			close(read)
		}()
		if _, err := c.Write(hello); err == nil { // the server may close at once
			c.(*net.TCPConn).CloseWrite()
		}
		<-read
		c.Close()
		waitFor(t, "every stream to end", func() bool { return srv.Streams() == 0 })
		checkServes(t, addr)
	})
}

// checkServes fails unless a new connection to addr gets a GET answered.
func checkServes(t *testing.T, addr string) {
	t.Helper()
	rc := dialFrames(t, addr)
	rc.headers(1, true, ":method", "GET", ":scheme", "http", ":path", "/", ":authority", "a")
	f := rc.next(1)
	h, ok := f.(*http2.MetaHeadersFrame)
	if !ok || h.PseudoValue("status") != "200" {
		t.Fatalf("a new connection's GET got %v, want 200", f)
	}
	rc.c.Close()
}
