//go:build !unix

package h2abuse

import (
	"errors"
	"syscall"
)

// setReceiveBuffer is not implemented off Unix.
func setReceiveBuffer(syscall.RawConn, int) error {
	return errors.New("h2abuse: Options.ReceiveBuffer needs a Unix system")
}
