//go:build unix

package static

import (
	"io/fs"
	"syscall"
)

// deviceAndInode returns the file's device and inode numbers.
func deviceAndInode(info fs.FileInfo) (dev, ino uint64) {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), uint64(st.Ino) //nolint:unconvert // int32 on some systems
	}
	return 0, 0
}
