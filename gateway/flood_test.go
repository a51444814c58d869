package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/admin"
	"github.com/hookgate/hookgate/gateway/config"
)

// idQueue remembers the event id of every delivery it accepts and nothing
// else, so the test's own memory does not grow with the events.
type idQueue struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (q *idQueue) Enqueue(ds []delivery.Delivery) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i := range ds {
		q.ids[string(ds[i].EventID)] = true
	}
	return nil
}

// TestFloodSheds: 200 senders post 256 KiB bodies as fast as they can for
// 2 s against a 4 MiB body budget, of which two slow senders (at two
// other addresses: one address may hold half the budget) hold all but
// 600 KiB (two bodies' worth) throughout, having sent most of their
// bodies, so that shedding does not depend on how fast this machine is. The gateway must shed the excess with
// 503 (or by closing the upload it refused unread), keep its heap
// bounded, answer /healthz on the admin listener throughout, and have
// queued every event it answered 202 for.
//
// The heap bound: at most 4 MiB of admitted bodies, plus per connection
// fasthttp's 16 KiB read buffer and the client's transport buffers
// (200 x ~40 KiB = 8 MiB), plus the 256 KiB shared payload, doubled for
// garbage the collector has not reclaimed yet (GOGC=100): about 25 MiB
// over the baseline, so 40 MiB leaves room for the race detector. Without
// the budget every sender's body is buffered at once: 200 x 256 KiB =
// 50 MiB live, 100 MiB of heap, well over the bound.
func TestFloodSheds(t *testing.T) {
	const (
		senders  = 200
		bodySize = 256 << 10
		budget   = 4 << 20
		flood    = 2 * time.Second
		bound    = 40 << 20
	)
	srv := testServer()
	srv.MaxBodyMemory = budget
	srv.MaxConcurrency = 4096
	srv.ReadTimeout = 30 * time.Second // the slow senders' bodies must not time out
	cfg := &config.Config{
		Server:  srv,
		Targets: []config.Target{targetAt(t, "crm", unusedURL)},
		Routes: []config.Route{{Name: "flood", Method: "POST", Path: "/flood", Mode: config.ModeAsync, Targets: []string{"crm"},
			MaxBody: budget}},
	}
	q := &idQueue{ids: map[string]bool{}}
	deps := newDeps(t, cfg)
	deps.Queue = q
	g, base := startGateway(t, cfg, deps)

	adm, err := admin.New(config.Admin{}, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	aln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go adm.Serve(aln)
	t.Cleanup(func() { adm.Shutdown(context.Background()) })

	// The slow senders: each sends all but the last byte of its body.
	const held = budget - 600<<10
	var slows []net.Conn
	for _, from := range []string{"127.0.0.2", "127.0.0.3"} {
		slow, err := dialFrom(from, strings.TrimPrefix(base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer slow.Close()
		fmt.Fprintf(slow, "POST /flood HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", held/2+1, bytes.Repeat([]byte{' '}, held/2))
		slows = append(slows, slow)
	}
	waitFor(t, "the slow senders' bytes", func() bool { return g.BodyMemory() == held })

	payload := bytes.Repeat([]byte("x"), bodySize)
	payload[0], payload[len(payload)-1] = '"', '"'

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	baseline := ms.HeapInuse

	ctx, cancel := context.WithTimeout(context.Background(), flood)
	defer cancel()
	var (
		wg                        sync.WaitGroup
		accepted, shed, transport atomic.Int64
		other                     atomic.Int64
		acceptedMu                sync.Mutex
		acceptedIDs               []string
		peak                      atomic.Uint64
		healthOK, healthFail      atomic.Int64
	)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: senders, MaxConnsPerHost: senders}}
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "POST", base+"/flood", bytes.NewReader(payload))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						transport.Add(1) // a refused upload, closed unread
						time.Sleep(50 * time.Millisecond)
					}
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case 202:
					var r struct {
						EventID string `json:"event_id"`
					}
					if json.Unmarshal(b, &r) != nil || r.EventID == "" {
						other.Add(1)
						continue
					}
					accepted.Add(1)
					acceptedMu.Lock()
					acceptedIDs = append(acceptedIDs, r.EventID)
					acceptedMu.Unlock()
				case 503:
					shed.Add(1)
					time.Sleep(50 * time.Millisecond) // Retry-After, shortened
				default:
					other.Add(1)
				}
			}
		}()
	}
	wg.Add(2)
	go func() { // heap sampler
		defer wg.Done()
		var ms runtime.MemStats
		for ctx.Err() == nil {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	go func() { // the orchestrator's probe
		defer wg.Done()
		hc := &http.Client{Transport: &http.Transport{}, Timeout: 2 * time.Second}
		for ctx.Err() == nil {
			resp, err := hc.Get("http://" + aln.Addr().String() + "/healthz")
			if err == nil && resp.StatusCode == 200 {
				healthOK.Add(1)
			} else {
				healthFail.Add(1)
			}
			if err == nil {
				resp.Body.Close()
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	wg.Wait()
	client.CloseIdleConnections()
	for _, slow := range slows {
		slow.Close()
	}

	t.Logf("accepted %d, shed with 503 %d, refused uploads %d, other %d; heap in use %.1f MiB over a %.1f MiB baseline; healthz %d ok, %d failed",
		accepted.Load(), shed.Load(), transport.Load(), other.Load(),
		float64(peak.Load()-min(peak.Load(), baseline))/(1<<20), float64(baseline)/(1<<20), healthOK.Load(), healthFail.Load())
	if accepted.Load() == 0 {
		t.Error("no event was accepted: the gateway must keep serving what fits")
	}
	if shed.Load()+transport.Load() == 0 {
		t.Error("nothing was shed: the flood did not reach the budget")
	}
	if other.Load() != 0 {
		t.Errorf("%d answers were neither 202 nor 503", other.Load())
	}
	if p := peak.Load(); p > baseline+bound {
		t.Errorf("heap in use reached %d MiB, over the %d MiB baseline + %d MiB bound", p>>20, baseline>>20, bound>>20)
	}
	if healthFail.Load() != 0 || healthOK.Load() == 0 {
		t.Errorf("/healthz: %d ok, %d failed; it must answer throughout", healthOK.Load(), healthFail.Load())
	}
	q.mu.Lock()
	for _, id := range acceptedIDs {
		if !q.ids[id] {
			t.Errorf("event %s was answered 202 but is not in the queue", id)
		}
	}
	q.mu.Unlock()
	waitFor(t, "the body budget to be released", func() bool { return g.BodyMemory() == 0 })
	// Every 503 seen was counted; a refused upload may have been cut off
	// before its answer, so the count can be higher than the 503s seen.
	if n := int64(g.Counts()[0].Refused["overloaded"]); n < shed.Load() {
		t.Errorf("overloaded counted %d, want at least the %d 503s seen", n, shed.Load())
	}
}
