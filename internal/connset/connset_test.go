package connset

import (
	"net"
	"testing"
)

// TestSet: a connection is in the set from Add until it is closed, by its
// user or by CloseAll, which closes the real connection.
func TestSet(t *testing.T) {
	var s Set
	a1, b1 := net.Pipe()
	a2, b2 := net.Pipe()
	defer b1.Close()
	defer b2.Close()
	c1, c2 := s.Add(a1), s.Add(a2)
	if s.Len() != 2 {
		t.Fatalf("Len = %d, want 2", s.Len())
	}
	c1.Close()
	c1.Close() // twice is harmless
	if s.Len() != 1 {
		t.Fatalf("Len after one Close = %d, want 1", s.Len())
	}
	s.CloseAll()
	if s.Len() != 0 {
		t.Fatalf("Len after CloseAll = %d, want 0", s.Len())
	}
	if _, err := c2.Write([]byte("x")); err == nil {
		t.Fatal("a connection CloseAll closed still writes")
	}
}
