//go:build linux

package gateway

import (
	"net"
	"testing"

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
	l := &connLimitListener{Listener: ln}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	cc, ok := got.(*countedConn)
	if !ok {
		t.Fatalf("Accept returned %T, want *countedConn", got)
	}
	if _, ok := cc.Conn.(*rawsock.Conn); !ok {
		t.Fatalf("an accepted connection is a %T, want *rawsock.Conn", cc.Conn)
	}
	if ip := cc.addr.ip.String(); ip != "127.0.0.1" {
		t.Fatalf("the connection's address is %s, want 127.0.0.1", ip)
	}
}
