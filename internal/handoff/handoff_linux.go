//go:build linux

package handoff

import (
	"syscall"
	_ "unsafe" // go:linkname
)

//go:linkname entersyscallblock runtime.entersyscallblock
func entersyscallblock()

//go:linkname exitsyscall runtime.exitsyscall
func exitsyscall()

// Fsync is fsync(2) on fd, as (*os.File).Sync makes it, with the P handed
// off for the call.
func Fsync(fd uintptr) error { return retry(syscall.SYS_FSYNC, fd) }

// Fdatasync is fdatasync(2) on fd, as Pebble's SyncData makes it, with the
// P handed off for the call.
func Fdatasync(fd uintptr) error { return retry(syscall.SYS_FDATASYNC, fd) }

func retry(trap, fd uintptr) error {
	Calls.add()
	for {
		switch e := blocking(trap, fd); e {
		case 0:
			return nil
		case syscall.EINTR:
		default:
			return e
		}
	}
}

// blocking is syscall.Syscall with entersyscallblock in place of
// entersyscall. Like it, it is nosplit: between the two runtime calls the
// goroutine must not grow its stack.
//
//go:nosplit
//go:norace
func blocking(trap, fd uintptr) syscall.Errno {
	entersyscallblock()
	_, _, e := syscall.RawSyscall(trap, fd, 0, 0)
	exitsyscall()
	return e
}
