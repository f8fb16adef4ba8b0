package proxy

// newH1Transport returns the transport to an http:// or unix: upstream:
// anx's own HTTP/1.1 client (h1Client).
func newH1Transport(t Target, o *transportOptions) transport {
	return newH1ClientFor(t, o, nil)
}
