//go:build !linux

package h2abuse

import "errors"

// ServerReleased needs Linux's /proc/net/tcp; elsewhere it reports an
// error.
func (c *Conn) ServerReleased() (bool, error) {
	return false, errors.New("h2abuse: ServerReleased needs /proc/net/tcp (Linux)")
}
