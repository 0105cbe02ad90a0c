package pkginstall_test

import (
	"os"
	"strconv"
	"syscall"
)

// statGID returns the group id of a file, as a string.
func statGID(fi os.FileInfo) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return strconv.FormatUint(uint64(st.Gid), 10)
	}
	return ""
}
