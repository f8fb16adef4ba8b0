package route

import "github.com/anx-gateway/anx/core/message"

// Finder is a handler that can tell, without waiting, whether it has
// something of its own for a request (core/static: a file or directory
// under its root), as opposed to a "not found".
type Finder interface {
	message.Handler
	// Finds reports whether Serve would answer r with something it
	// has. It must not change r and must not wait.
	Finds(r *message.Request) bool
}

// TryFirst serves a request with Primary when Primary finds something for
// it, and with Fallback otherwise: "a file under the root if it exists,
// else the application" (nginx's try_files $uri @app). It is a
// message.Dispatcher, so a request that Primary serves without waiting
// stays on a front end's event loop while the others go to Fallback on a
// goroutine.
type TryFirst struct {
	Primary  Finder
	Fallback message.Handler
}

// HandlerFor returns Primary when it finds something for r, else
// Fallback. It implements message.Dispatcher.
func (t TryFirst) HandlerFor(r *message.Request) message.Handler {
	if t.Primary.Finds(r) {
		return t.Primary
	}
	return t.Fallback
}

// NonBlocking reports whether both handlers never wait.
func (t TryFirst) NonBlocking() bool {
	return message.IsNonBlocking(t.Primary) && message.IsNonBlocking(t.Fallback)
}

// Serve passes r to the handler HandlerFor picks.
func (t TryFirst) Serve(w message.ResponseWriter, r *message.Request) {
	t.HandlerFor(r).Serve(w, r)
}
