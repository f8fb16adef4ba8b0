//go:build !linux

package h1

// initWait prepares the idle wait; off Linux there is nothing to prepare.
func (c *conn) initWait() {}

// waitReadable blocks until the connection has bytes to read, or its read
// deadline passes, by reading one byte into c.peek.
func (c *conn) waitReadable() error { return c.waitByReading() }

// peekInput cannot look at the socket here: it reports nothing.
func (c *conn) peekInput([]byte) int { return 0 }
