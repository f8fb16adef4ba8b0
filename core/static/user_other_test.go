//go:build !linux

package static_test

import "errors"

// nobody is the user id the tests take to be someone who does not own
// the files they make.
const nobody = 65534

// asUser fails: taking another user's file system id (setfsuid) is
// Linux's.
func asUser(uid int, f func()) error {
	return errors.New("static test: running as another user needs Linux's setfsuid")
}
