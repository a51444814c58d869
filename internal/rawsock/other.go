//go:build !linux

// Package rawsock: elsewhere than Linux, connections are used as they are.
package rawsock

import (
	"net"
	"time"
)

// Wrap returns c: the raw path is built for Linux only.
func Wrap(c net.Conn) net.Conn { return c }

// WrapClient returns c.
func WrapClient(c net.Conn) net.Conn { return c }

// WrapServer returns c.
func WrapServer(c net.Conn) net.Conn { return c }

// SetReadTimeout sets c's read deadline after from now; after <= 0 clears
// it.
func SetReadTimeout(c net.Conn, after time.Duration) error {
	return c.SetReadDeadline(in(after))
}

// SetWriteTimeout sets c's write deadline after from now; after <= 0
// clears it.
func SetWriteTimeout(c net.Conn, after time.Duration) error {
	return c.SetWriteDeadline(in(after))
}

func in(after time.Duration) time.Time {
	if after <= 0 {
		return time.Time{}
	}
	return time.Now().Add(after)
}

// Batching reports that reads and writes are not batched: io_uring is
// Linux's.
func Batching() (on bool, why string) { return false, "io_uring is Linux's" }
