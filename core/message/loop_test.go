package message

import "testing"

// loopTestHandler is a NonBlocking Handler (saying nonBlocking); the
// wrappers below add the other abilities a case wants.
type loopTestHandler struct {
	nonBlocking bool
	loopPath    string  // loopServer: the path it serves on the loop
	next        Handler // dispatcher: where it passes requests; nil: it answers them
}

func (h *loopTestHandler) Serve(ResponseWriter, *Request) {}
func (h *loopTestHandler) NonBlocking() bool              { return h.nonBlocking }

// loopServer is a LoopServer that takes the requests for loopPath;
// dispatcher is a Dispatcher to next.
type loopServer struct{ *loopTestHandler }

func (l loopServer) ServesOnLoop(r *Request) bool { return r.Path == l.loopPath }

type dispatcher struct{ *loopTestHandler }

func (d dispatcher) HandlerFor(r *Request) Handler { return d.next }

// TestServesOnLoop follows Dispatchers to the handler that answers, as
// IsNonBlockingFor does, and asks a LoopServer there, else whether it
// never waits.
func TestServesOnLoop(t *testing.T) {
	blocking := &loopTestHandler{}
	static := &loopTestHandler{nonBlocking: true}
	proxy := loopServer{&loopTestHandler{loopPath: "/get"}}
	cycle := dispatcher{&loopTestHandler{}}
	cycle.next = cycle
	for _, c := range []struct {
		name string
		h    Handler
		path string
		want bool
	}{
		{"a blocking handler", blocking, "/", false},
		{"a non-blocking handler", static, "/", true},
		{"a LoopServer that takes the request", proxy, "/get", true},
		{"a LoopServer that does not", proxy, "/post", false},
		{"through a Dispatcher to a LoopServer", dispatcher{&loopTestHandler{next: proxy}}, "/get", true},
		{"through two Dispatchers to a blocking handler", dispatcher{&loopTestHandler{next: dispatcher{&loopTestHandler{next: blocking}}}}, "/get", false},
		{"a Dispatcher that answers itself, non-blocking", dispatcher{&loopTestHandler{nonBlocking: true}}, "/", true},
		{"a cycle of Dispatchers", cycle, "/", false},
	} {
		if got := ServesOnLoop(c.h, &Request{Path: c.path}); got != c.want {
			t.Errorf("%s: ServesOnLoop = %v, want %v", c.name, got, c.want)
		}
	}
}
