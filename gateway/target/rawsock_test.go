//go:build linux

package target

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/rawsock"
	"github.com/valyala/fasthttp"
)

// Connections to targets read and write through rawsock (see that
// package): only this test notices if the wrapping goes. Over plain HTTP
// a request is held until its answer is read (rawsock.WrapClient); under
// TLS it goes out when written, since crypto/tls writes alerts that no
// read follows.
func TestDialRawWraps(t *testing.T) {
	for _, isTLS := range []bool{false, true} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		got := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				got <- err
				return
			}
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			_, err = c.Read(make([]byte, 1))
			got <- err
		}()
		c, err := dialRaw(&fasthttp.TCPDialer{}, isTLS, time.Second)(ln.Addr().String(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, ok := c.(*rawsock.Conn); !ok {
			t.Fatalf("dialRaw gave a %T, want *rawsock.Conn", c)
		}
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		err = <-got
		if held := errors.Is(err, os.ErrDeadlineExceeded); held == isTLS {
			t.Fatalf("TLS %v: the peer's read before the client read: %v; want the byte held only without TLS", isTLS, err)
		}
	}
}
