package proxy

import (
	"io"
	"net/http"
	"testing"
)

func TestH1ClientCountsPooledConnections(t *testing.T) {
	up := newHTTPUpstream(t, "tcp", 0, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})
	c := testClient(up.ln.Addr().String(), defaultTestOptions)
	defer c.closeIdle()
	if n := c.idleConns(); n != 0 {
		t.Fatalf("%d pooled before any request, want 0", n)
	}
	for i := range 3 {
		if _, err := do(t, c, getRequest("/")); err != nil {
			t.Fatal(err)
		}
		if n := c.idleConns(); n != 1 {
			t.Fatalf("after request %d: %d pooled, want 1 (the connection back in the pool)", i+1, n)
		}
	}
	if conn := c.getIdle(); conn == nil {
		t.Fatal("no pooled connection to take")
	} else {
		if n := c.idleConns(); n != 0 {
			t.Errorf("%d pooled while the only connection is taken, want 0", n)
		}
		c.put(conn)
	}
	c.closeIdle()
	if n := c.idleConns(); n != 0 {
		t.Errorf("%d pooled after closeIdle, want 0", n)
	}
	if got := pooledOf(c); got != 0 {
		t.Errorf("pooledOf the client: %d, want 0", got)
	}
	if got := pooledOf(&stdTransport{}); got != -1 {
		t.Errorf("pooledOf a net/http transport: %d, want -1 (unknown)", got)
	}
}
