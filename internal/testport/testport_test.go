package testport

import "testing"

// TestPortNeverTwice: while a test holds a port from Port, no
// other Port returns it. 300 random picks from the ~12,000 ports
// below the ephemeral range would repeat one almost surely (the birthday
// bound puts it above 95%), which is how two nodes of one cluster, or two
// test binaries side by side, once got the same port.
func TestPortNeverTwice(t *testing.T) {
	seen := map[int]bool{}
	for range 300 {
		p := Port(t)
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}
