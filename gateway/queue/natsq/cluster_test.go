package natsq

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/queue"
	"github.com/hookgate/hookgate/internal/natstest"
)

// A 3-node cluster with R3 streams loses nothing acknowledged when the
// stream's leader node is killed mid-load: two gateways enqueue a bounded
// number of events and deliver them (acking) while it goes down, and
// every enqueue that returned nil is delivered at least once. Duplicates
// (an ack lost with the node) are counted and reported, not failed.
func TestClusterNodeLossLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("a 3-node cluster under load: not in -short")
	}
	c := natstest.Cluster(t, 3)
	opts := Options{AckWait: 5 * time.Second, Timeout: 5 * time.Second}
	gws := []*Engine{
		openStream(t, c.URLs(), "hookgate", 3, opts),
		openStream(t, c.URLs(), "hookgate", 3, opts),
	}
	const total = 2000
	const producers = 4
	var (
		mu        sync.Mutex
		acked     = make(map[string]bool) // Enqueue returned nil
		delivered = make(map[string]int)
		refused   atomic.Int64
		ackFails  atomic.Int64
		next      atomic.Int64
		killed    = make(chan struct{})
		killOnce  sync.Once
	)
	giveUp := time.Now().Add(4 * engineWait)
	var prod sync.WaitGroup
	for p := 0; p < producers; p++ {
		prod.Add(1)
		go func() {
			defer prod.Done()
			e := gws[p%len(gws)]
			for {
				i := next.Add(1) - 1
				if i >= total {
					return
				}
				// A refused enqueue (a 503) is sent again, as a sender
				// would, until stored: the cluster must carry on.
				id := fmt.Sprintf("c%04d.0", i)
				for {
					err := e.Enqueue([]delivery.Delivery{dlv(id, "crm", "r", "x")})
					if err == nil {
						break
					}
					refused.Add(1)
					if time.Now().After(giveUp) {
						t.Errorf("enqueue of %s still refused after %s: %v", id, 4*engineWait, err)
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
				mu.Lock()
				acked[id] = true
				n := len(acked)
				mu.Unlock()
				if n == total/4 {
					killOnce.Do(func() { close(killed) })
				}
			}
		}()
	}
	stop := make(chan struct{})
	var cons sync.WaitGroup
	for _, e := range gws {
		for w := 0; w < 2; w++ {
			cons.Add(1)
			go func() {
				defer cons.Done()
				var got []queue.Leased
				for {
					select {
					case <-stop:
						return
					default:
					}
					var err error
					got, err = e.Claim(got, "crm", time.Now(), 16, time.Minute)
					if err != nil || len(got) == 0 {
						time.Sleep(10 * time.Millisecond)
						continue
					}
					for i := range got {
						mu.Lock()
						delivered[string(got[i].Delivery.ID)]++
						mu.Unlock()
						if err := e.Ack(got[i].Ref); err != nil {
							ackFails.Add(1)
						}
					}
				}
			}()
		}
	}

	select {
	case <-killed:
	case <-time.After(4 * engineWait):
		t.Fatal("load never reached a quarter of its enqueues")
	}
	leader := -1
	for i := 0; i < 3; i++ {
		if s := c.Node(i).Server(); s != nil && s.JetStreamIsStreamLeader("$G", "hookgate") {
			leader = i
		}
	}
	if leader < 0 {
		leader = 0
	}
	c.Node(leader).Shutdown()
	t.Logf("killed node %d (the stream's leader) after %d acknowledged enqueues", leader, total/4)
	prod.Wait()

	deadline := time.Now().Add(6 * engineWait)
	for {
		mu.Lock()
		missing := 0
		for id := range acked {
			if delivered[id] == 0 {
				missing++
			}
		}
		nAcked := len(acked)
		mu.Unlock()
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			close(stop)
			cons.Wait()
			t.Fatalf("%d of %d acknowledged deliveries never delivered", missing, nAcked)
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	cons.Wait()
	c.Node(leader).Restart()

	mu.Lock()
	defer mu.Unlock()
	dups := 0
	for id, n := range delivered {
		if n > 1 {
			dups += n - 1
		}
		if !acked[id] {
			t.Errorf("%s delivered but never enqueued", id)
		}
	}
	t.Logf("%d enqueues acknowledged, %d refusals (503, sent again); all acknowledged delivered; %d duplicate deliveries, %d acks failed",
		len(acked), refused.Load(), dups, ackFails.Load())
	if len(acked) != total {
		t.Fatalf("%d of %d enqueues acknowledged: the cluster did not carry on with one node down", len(acked), total)
	}
}
