//go:build !linux

// Package rawsock: elsewhere than Linux, connections are used as they are.
package rawsock

import "net"

// Wrap returns c: the raw path is built for Linux only.
func Wrap(c net.Conn) net.Conn { return c }

// WrapClient returns c.
func WrapClient(c net.Conn) net.Conn { return c }

// WrapServer returns c.
func WrapServer(c net.Conn) net.Conn { return c }
