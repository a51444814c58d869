//go:build linux

package rawsock

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Each scenario runs on a plain *net.TCPConn and on the same kind of
// connection wrapped: the errors must read the same, wrap the same and
// classify the same, since fasthttp and the target client tell timeouts,
// lost connections and EOF apart by them.
func TestErrorsAsNetConn(t *testing.T) {
	type scenario func(t *testing.T, c net.Conn, peer *net.TCPConn) error
	for _, sc := range []struct {
		name string
		run  scenario
	}{
		{"read deadline", func(t *testing.T, c net.Conn, _ *net.TCPConn) error {
			c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
			_, err := c.Read(make([]byte, 8))
			return err
		}},
		{"deadline already past, data waiting", func(t *testing.T, c net.Conn, peer *net.TCPConn) error {
			peer.Write([]byte("data"))
			time.Sleep(10 * time.Millisecond)
			c.SetReadDeadline(time.Now().Add(-time.Second))
			_, err := c.Read(make([]byte, 8))
			return err
		}},
		{"write deadline", func(t *testing.T, c net.Conn, _ *net.TCPConn) error {
			c.SetWriteDeadline(time.Now().Add(30 * time.Millisecond))
			_, err := c.Write(make([]byte, 64<<20)) // the peer never reads
			return err
		}},
		{"read after Close", func(t *testing.T, c net.Conn, _ *net.TCPConn) error {
			c.Close()
			_, err := c.Read(make([]byte, 8))
			return err
		}},
		{"write after Close", func(t *testing.T, c net.Conn, _ *net.TCPConn) error {
			c.Close()
			_, err := c.Write([]byte("x"))
			return err
		}},
		{"empty read after Close", func(t *testing.T, c net.Conn, _ *net.TCPConn) error {
			c.Close()
			_, err := c.Read(nil)
			return err
		}},
		{"empty write after Close", func(t *testing.T, c net.Conn, _ *net.TCPConn) error {
			c.Close()
			_, err := c.Write(nil)
			return err
		}},
		{"EOF", func(t *testing.T, c net.Conn, peer *net.TCPConn) error {
			peer.Close()
			_, err := c.Read(make([]byte, 8))
			return err
		}},
		{"read from a reset connection", func(t *testing.T, c net.Conn, peer *net.TCPConn) error {
			c.Write([]byte("unread")) // data the peer never reads: its close sends RST
			time.Sleep(10 * time.Millisecond)
			peer.SetLinger(0)
			peer.Close()
			time.Sleep(10 * time.Millisecond)
			_, err := c.Read(make([]byte, 8))
			return err
		}},
		{"write to a reset connection", func(t *testing.T, c net.Conn, peer *net.TCPConn) error {
			peer.SetLinger(0)
			peer.Close()
			time.Sleep(10 * time.Millisecond)
			var err error
			for i := 0; i < 100 && err == nil; i++ {
				_, err = c.Write([]byte("POST / HTTP/1.1\r\n\r\n"))
			}
			return err
		}},
	} {
		t.Run(sc.name, func(t *testing.T) {
			plainC, plainPeer := tcpPair(t)
			want := describe(sc.run(t, plainC, plainPeer), plainC)
			rawC, rawPeer := tcpPair(t)
			wrapped := Wrap(rawC)
			if _, ok := wrapped.(*Conn); !ok {
				t.Fatal("Wrap did not wrap a *net.TCPConn")
			}
			t.Cleanup(func() { wrapped.Close() }) // takes it out of the sweeper's set
			got := describe(sc.run(t, wrapped, rawPeer), rawC)
			if got != want {
				t.Fatalf("wrapped connection's error:\n%s\nnet.Conn's:\n%s", got, want)
			}
			t.Log(want)
			if want == "<nil>" {
				t.Fatal("the scenario gave no error at all")
			}
		})
	}
}

// describe is everything about err a caller could look at, with the
// connection's addresses (which differ between the two runs) masked.
func describe(err error, c net.Conn) string {
	if err == nil {
		return "<nil>"
	}
	msg := strings.NewReplacer(c.LocalAddr().String(), "LOCAL", c.RemoteAddr().String(), "REMOTE").Replace(err.Error())
	var b strings.Builder
	fmt.Fprintf(&b, "%T %q", err, msg)
	var op *net.OpError
	if errors.As(err, &op) {
		fmt.Fprintf(&b, " op=%s net=%s inner=%T source=%v addr=%v", op.Op, op.Net, op.Err, op.Source != nil, op.Addr != nil)
	}
	var ne net.Error
	if errors.As(err, &ne) {
		fmt.Fprintf(&b, " timeout=%v", ne.Timeout())
	}
	for _, target := range []error{io.EOF, os.ErrDeadlineExceeded, net.ErrClosed, syscall.EPIPE, syscall.ECONNRESET} {
		fmt.Fprintf(&b, " is(%v)=%v", target, errors.Is(err, target))
	}
	return b.String()
}

// tcpPair is a loopback connection dialed as "tcp", both ends unwrapped.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer := <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); peer.Close() })
	return c.(*net.TCPConn), peer.(*net.TCPConn)
}
