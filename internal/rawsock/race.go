//go:build linux && race

package rawsock

import "syscall"

// Under the race detector, the calls go through syscall.Read and Write,
// which tell the detector about the buffer (a raw call would hide a use of
// a released buffer) and about the ordering a socket gives between
// goroutines. Everything else in the package runs as in production.
func sysRead(fd uintptr, p []byte) (int, syscall.Errno) {
	n, err := syscall.Read(int(fd), p)
	return n, errnoOf(err)
}

func sysWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	n, err := syscall.Write(int(fd), p)
	return n, errnoOf(err)
}

func errnoOf(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	return err.(syscall.Errno)
}

// newBatcher, under the race detector, batches without a ring: the calls
// of a batch are made one by one, through syscall.Read and Write, so that
// the detector checks the batcher's hand-offs and sees every buffer's use.
func newBatcher() (*batcher, error) {
	return &batcher{run: runPlain, limit: ringEntries}, nil
}
