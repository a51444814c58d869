//go:build linux

package target

import (
	"net"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/rawsock"
	"github.com/valyala/fasthttp"
)

// Connections to targets read and write through rawsock (see that
// package): only this test notices if the wrapping goes.
func TestDialRawWraps(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := dialRaw(&fasthttp.TCPDialer{})(ln.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*rawsock.Conn); !ok {
		t.Fatalf("dialRaw gave a %T, want *rawsock.Conn", c)
	}
}
