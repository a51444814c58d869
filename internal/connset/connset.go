// Package connset keeps the open connections of a listener or a client,
// so that they can be closed together: for a Close that must cut what is
// open, where the owner of the connections (a server, a pool) would keep
// them.
package connset

import (
	"net"
	"sync"
)

// Set is a set of open connections. The zero value is ready to use.
type Set struct {
	mu    sync.Mutex
	conns map[*conn]struct{}
}

// Add returns c, kept in the set until it is closed.
func (s *Set) Add(c net.Conn) net.Conn {
	tc := &conn{Conn: c, s: s}
	s.mu.Lock()
	if s.conns == nil {
		s.conns = map[*conn]struct{}{}
	}
	s.conns[tc] = struct{}{}
	s.mu.Unlock()
	return tc
}

// Len is the number of open connections.
func (s *Set) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// CloseAll closes every connection open now.
func (s *Set) CloseAll() {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

type conn struct {
	net.Conn
	s    *Set
	once sync.Once
}

func (c *conn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
	})
	return c.Conn.Close()
}
