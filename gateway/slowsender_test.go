package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/internal/sink"
)

// dialFrom opens a TCP connection to addr from the loopback address
// local (Linux routes all of 127/8 to lo), so a test can play senders at
// several client addresses.
func dialFrom(local, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	return d.Dial("tcp", addr)
}

// TestSlowSendersDoNotDenyService is issue 12 item 4: 300 connections
// from one address (127.0.0.2) declare a 1 MiB body and then send one
// byte a second, reconnecting whenever they are closed, while legitimate
// senders at 127.0.0.1 post small events. The attack is over the
// gateway's connection cap (256) on its own, and its declared bodies
// are over the body memory budget (64 MiB) on their own. At least 99%
// of the legitimate posts must succeed.
//
// The run is bounded in count and time: 4 senders post at most 100
// events each, one every 10 ms or more (so the run spans more than a
// second of trickling), and stop after 3 s if they are not done.
func TestSlowSendersDoNotDenyService(t *testing.T) {
	const (
		attackers = 300
		declared  = 1 << 20
		legit     = 4
		perSender = 100
		attack    = 3 * time.Second
	)
	s := startSink(t, sink.Options{Discard: true})
	srv := testServer()
	srv.MaxConcurrency = 64 // connections: 256
	srv.MaxBodyMemory = 64 << 20
	cfg := &config.Config{
		Server:  srv,
		Targets: []config.Target{targetAt(t, "crm", s.URL())},
		Routes:  []config.Route{syncRoute("r", "/r", "crm")},
	}
	g, base := startGateway(t, cfg, newDeps(t, cfg))
	addr := strings.TrimPrefix(base, "http://")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		wg                sync.WaitGroup
		held, dialsRefuse atomic.Int64
	)
	for i := range attackers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				c, err := dialFrom("127.0.0.2", addr)
				if err != nil {
					dialsRefuse.Add(1)
					time.Sleep(100 * time.Millisecond)
					continue
				}
				held.Add(1)
				fmt.Fprintf(c, "POST /r HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", declared)
				// Half of them trickle from the start; the other half send
				// 16 KiB first, so that their handler is reading the body.
				if i%2 == 1 {
					c.Write(bytes.Repeat([]byte{' '}, 16<<10))
				}
				for ctx.Err() == nil {
					if _, err := c.Write([]byte{' '}); err != nil {
						break
					}
					select {
					case <-ctx.Done():
					case <-time.After(time.Second):
					}
				}
				held.Add(-1)
				c.Close()
			}
		}()
	}
	// Let the attack take hold before the legitimate senders start: the
	// gateway has as many of the attackers' connections open as one
	// address may (128), and the attackers have dialled all 300.
	waitFor(t, "the attack to take hold", func() bool {
		return g.srv.GetOpenConnectionsCount() >= 128 && held.Load() == attackers
	})

	var ok, failed atomic.Int64
	var failMu sync.Mutex
	failures := map[string]int{}
	deadline := time.Now().Add(attack)
	var lg sync.WaitGroup
	for range legit {
		lg.Add(1)
		go func() {
			defer lg.Done()
			tr := &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
				return dialFrom("127.0.0.1", a)
			}}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			for n := 0; n < perSender && time.Now().Before(deadline); n++ {
				time.Sleep(10 * time.Millisecond) // a paced sender: the run spans the attack's trickle
				resp, err := c.Post(base+"/r", "application/json", strings.NewReader(`{"event":"order.paid"}`))
				why := ""
				if err != nil {
					why = "transport: " + err.Error()
				} else {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						why = fmt.Sprintf("%d %s", resp.StatusCode, b)
					}
				}
				if why == "" {
					ok.Add(1)
					continue
				}
				failed.Add(1)
				failMu.Lock()
				failures[why]++
				failMu.Unlock()
			}
		}()
	}
	lg.Wait()
	attackersHeld := held.Load()
	cancel()
	wg.Wait()

	total := ok.Load() + failed.Load()
	rate := float64(ok.Load()) / float64(max(total, 1))
	t.Logf("legitimate posts: %d of %d succeeded (%.1f%%); attackers had %d connections dialled at the end (%d dials failed); failures %v",
		ok.Load(), total, 100*rate, attackersHeld, dialsRefuse.Load(), failures)
	if total < legit*10 {
		t.Fatalf("only %d legitimate posts were made: the test did not measure anything", total)
	}
	if rate < 0.99 {
		t.Errorf("%.1f%% of legitimate posts succeeded during the slow-sender attack, want at least 99%%", 100*rate)
	}
}

// TestPerIPShare: server.per_ip_share sets what one address may hold: at
// 1 (behind a proxy) the address may open every connection the cap
// allows; at the default it gets half.
func TestPerIPShare(t *testing.T) {
	for _, tc := range []struct {
		share float64
		want  int64
	}{{0.5, 32}, {1, 64}, {0.25, 16}, {0, 32}} {
		if got := share(64, tc.share); got != tc.want {
			t.Errorf("share(64, %v) = %d, want %d", tc.share, got, tc.want)
		}
	}
	if got := share(1, 0.5); got != 1 {
		t.Errorf("share(1, 0.5) = %d: a cap that is set leaves at least one", got)
	}
	if got := share(0, 0.5); got != 0 {
		t.Errorf("share(0, 0.5) = %d: no cap stays no cap", got)
	}
}
