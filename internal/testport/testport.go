// Package testport hands tests loopback ports for servers they start
// themselves, where the server's own config names the port (so port 0
// will not do).
//
// Listening on port 0 and closing again gives a port from the kernel's
// ephemeral range, and until the test's server binds it, anything can
// take it: the source port of any outgoing connection, or another test's
// port-0 listener. With every package's tests running at once, both
// happened: a NATS node that never started, and a hookgate test that
// reloaded another process's server, which answered 200, while its own
// had failed to bind. A port from here is below the ephemeral range, so
// only an explicit bind can take it, and it is reserved across test
// processes for the rest of the test.
package testport

import (
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Port returns a 127.0.0.1 port that is free now and that no other
// caller of Port, in this process or another, gets until the test ends.
func Port(t testing.TB) int {
	t.Helper()
	lo := ephemeralLow()
	for range 100 {
		port := portFloor + rand.IntN(lo-portFloor)
		if !reserve(t, port) {
			continue // handed to another test of this run: try another
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue // taken: try another
		}
		l.Close()
		return port
	}
	t.Fatalf("testport: no free port in [%d, %d) after 100 tries", portFloor, lo)
	return 0
}

// Addr is Port as a "127.0.0.1:port" listen address.
func Addr(t testing.TB) string {
	t.Helper()
	return "127.0.0.1:" + strconv.Itoa(Port(t))
}

// reserve claims port for the rest of the test with an exclusive flock on
// a file named after it, so no other Port, in this process or in another
// test binary running beside it (go test runs packages in parallel), hands
// it out again while the test may still (re)start a server on it. The
// kernel drops the lock when the file is closed or the process dies, so
// nothing stale survives a crashed run.
func reserve(t testing.TB, port int) bool {
	dir := filepath.Join(os.TempDir(), "hookgate-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatalf("testport: %v", err)
	}
	// Like /tmp itself: every user's tests create their ports' files here.
	// Only the directory's owner can set this; for the others it is set.
	_ = os.Chmod(dir, 0o777|os.ModeSticky)
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDONLY, 0o644)
	if err != nil {
		t.Fatalf("testport: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return false
	}
	t.Cleanup(func() { f.Close() })
	return true
}

// portFloor is the lowest port Port picks: clear of the well-known and
// most registered services' ports.
const portFloor = 20000

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's
// default 32768 when it cannot be read, or when it leaves too little room
// below it).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 32768
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil || lo < portFloor+1000 {
		return 32768
	}
	return lo
}
