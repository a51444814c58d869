//go:build linux

package gateway

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/rawsock"
)

// The connections Serve accepts read and write through rawsock: the two
// behave the same, so only this test notices if the wrapping goes (the
// load harness would, as about 10% more CPU per request).
func TestAcceptedConnsUseRawsock(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, cc := acceptOne(t, &connLimitListener{Listener: ln})
	if _, ok := cc.Conn.(*rawsock.Conn); !ok {
		t.Fatalf("an accepted connection is a %T, want *rawsock.Conn", cc.Conn)
	}
	if ip := cc.addr.ip.String(); ip != "127.0.0.1" {
		t.Fatalf("the connection's address is %s, want 127.0.0.1", ip)
	}

	// As a server's connection (rawsock.WrapServer): an answer waits for
	// the next Read, or goes out with the Close.
	if _, err := cc.Write([]byte("answer")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	if n, err := c.Read(make([]byte, 8)); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the client read %d bytes (%v) before the server read or closed; want none", n, err)
	}
	cc.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if b, err := io.ReadAll(c); string(b) != "answer" || err != nil {
		t.Fatalf("the client read %q, %v; want the answer, then EOF", b, err)
	}
}
