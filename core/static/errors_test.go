package static

import (
	"io/fs"
	"os"
	"syscall"
	"testing"
)

func TestStatusForError(t *testing.T) {
	root, err := os.OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	_, escape := root.Open("../outside")
	if escape == nil {
		t.Fatal("os.Root opened a name outside it")
	}
	for _, tc := range []struct {
		err  error
		want int
	}{
		{&fs.PathError{Op: "openat", Path: "x", Err: syscall.ENOENT}, 404},
		{&fs.PathError{Op: "openat", Path: "x", Err: syscall.ENOTDIR}, 404},
		{&fs.PathError{Op: "openat", Path: "x", Err: syscall.ELOOP}, 404},
		{&fs.PathError{Op: "openat", Path: "x", Err: syscall.ENAMETOOLONG}, 404},
		{escape, 404}, // os.Root: "path escapes from parent"
		{&fs.PathError{Op: "openat", Path: "x", Err: syscall.EACCES}, 403},
		{&fs.PathError{Op: "openat", Path: "x", Err: syscall.EPERM}, 403},
		{&fs.PathError{Op: "openat", Path: "x", Err: os.ErrClosed}, 503},
		{&fs.PathError{Op: "openat", Path: "x", Err: syscall.EIO}, 500},
		{&fs.PathError{Op: "openat", Path: "x", Err: syscall.EMFILE}, 500},
	} {
		if got := statusForError(tc.err); got != tc.want {
			t.Errorf("statusForError(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

// A 500 says nothing about its cause.
func TestInternalErrorBodyIsGeneric(t *testing.T) {
	if got, want := statusBody(500), "500 Internal Server Error\n"; got != want {
		t.Errorf("statusBody(500) = %q, want %q", got, want)
	}
}
