package static_test

import (
	"fmt"
	"runtime"
	"syscall"
)

// nobody is the user id the tests take to be someone who does not own
// the files they make (Debian's nobody).
const nobody = 65534

// asUser runs f on a new thread whose file system user id is uid (it
// needs root, CAP_SETUID) and waits for it. The thread ends with f: its
// goroutine never unlocks it, so the runtime does not reuse it as root.
// f may call t.Error, not t.Fatal.
func asUser(uid int, f func()) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		syscall.Setfsuid(uid)
		// setfsuid with an invalid id changes nothing and returns the
		// current one.
		if got, _, _ := syscall.Syscall(syscall.SYS_SETFSUID, ^uintptr(0), 0, 0); int(got) != uid {
			done <- fmt.Errorf("fsuid is %d after setfsuid(%d)", got, uid)
			return
		}
		f()
		done <- nil
	}()
	return <-done
}
