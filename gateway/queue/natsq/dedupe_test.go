package natsq

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookgate/hookgate/gateway/dedupe"
	"github.com/hookgate/hookgate/internal/natstest"
)

// failAfter is a failure timeout for a noisy 2-core machine, never an
// expectation of how fast something happens.
const failAfter = 30 * time.Second

// dedupeConn is one gateway's connection to NATS.
func dedupeConn(t *testing.T, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, nats.Name(t.Name()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// waitStreamLeader waits until stream has a leader and all its replicas
// are current.
func waitStreamLeader(t testing.TB, js jetstream.JetStream, stream string, replicas int) {
	t.Helper()
	deadline := time.Now().Add(failAfter)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := js.Stream(ctx, stream)
		cancel()
		if err == nil {
			if ci := st.CachedInfo().Cluster; ci != nil && ci.Leader != "" && currentReplicas(ci) == replicas-1 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream %s has no leader with current replicas after %s (last error: %v)", stream, failAfter, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func currentReplicas(ci *jetstream.ClusterInfo) int {
	n := 0
	for _, p := range ci.Replicas {
		if p.Current && !p.Offline {
			n++
		}
	}
	return n
}

// twoGateways opens the same dedupe bucket through two connections, as
// two gateways on one stream do.
func twoGateways(t *testing.T) (*natstest.Server, *Dedupe, *Dedupe) {
	t.Helper()
	srv := natstest.Start(t)
	var ds [2]*Dedupe
	for i := range ds {
		_, js := dedupeConn(t, srv.URL())
		d, err := newDedupe(js, "hookgate", 1)
		if err != nil {
			t.Fatal(err)
		}
		ds[i] = d
	}
	return srv, ds[0], ds[1]
}

func mustBegin(t *testing.T, d *Dedupe, route, key, eventID string) ([]byte, dedupe.Seen) {
	t.Helper()
	first, seen, err := d.Begin(route, []byte(key), []byte(eventID))
	if err != nil {
		t.Fatalf("Begin(%q, %q, %q): %v", route, key, eventID, err)
	}
	return first, seen
}

func wantSeen(t *testing.T, d *Dedupe, route, key, eventID string, want dedupe.Seen, wantFirst string) {
	t.Helper()
	first, seen := mustBegin(t, d, route, key, eventID)
	if seen != want || (want != dedupe.First && string(first) != wantFirst) {
		t.Fatalf("Begin(%q, %q, %q) = %q %v, want %q %v", route, key, eventID, first, seen, wantFirst, want)
	}
}

// TestDedupeOneFirstAcrossGateways is the point of a shared bucket: the
// same key begun on two gateways at the same moment is First on exactly
// one; once accepted, a repeat on the other is a Duplicate carrying the
// first event id.
func TestDedupeOneFirstAcrossGateways(t *testing.T) {
	_, a, b := twoGateways(t)
	const rounds = 40
	for i := range rounds {
		key := fmt.Sprintf("msg_%d", i)
		gws := [2]*Dedupe{a, b}
		var (
			start  = make(chan struct{})
			wg     sync.WaitGroup
			firsts [2][]byte
			seens  [2]dedupe.Seen
			errs   [2]error
		)
		for g := range gws {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				firsts[g], seens[g], errs[g] = gws[g].Begin("howxm", []byte(key), []byte(fmt.Sprintf("evt_%d_%d", i, g)))
			}()
		}
		close(start)
		wg.Wait()
		for g := range errs {
			if errs[g] != nil {
				t.Fatalf("round %d gateway %d: %v", i, g, errs[g])
			}
		}
		won := -1
		for g, s := range seens {
			if s == dedupe.First {
				if won >= 0 {
					t.Fatalf("round %d: both gateways got First for %q", i, key)
				}
				won = g
			}
		}
		if won < 0 {
			t.Fatalf("round %d: neither gateway got First (%v, %v)", i, seens[0], seens[1])
		}
		lost := 1 - won
		winner := fmt.Sprintf("evt_%d_%d", i, won)
		if seens[lost] != dedupe.InFlight || string(firsts[lost]) != winner {
			t.Fatalf("round %d: the other gateway got %q %v, want %q in_flight", i, firsts[lost], seens[lost], winner)
		}
		if err := gws[won].Accept("howxm", []byte(key), []byte(winner), time.Hour); err != nil {
			t.Fatalf("round %d: Accept: %v", i, err)
		}
		wantSeen(t, gws[lost], "howxm", key, fmt.Sprintf("evt_%d_retry", i), dedupe.Duplicate, winner)
		wantSeen(t, gws[won], "howxm", key, fmt.Sprintf("evt_%d_retry2", i), dedupe.Duplicate, winner)
	}
	// Routes have their own keys: the same key on another route is new.
	wantSeen(t, b, "smartsupp", "msg_0", "evt_other_route", dedupe.First, "")
	// Any route name and key bytes make a key the bucket takes.
	wantSeen(t, b, "howxm.eu", "\x00 .*>\xff", "evt_odd", dedupe.First, "")
	wantSeen(t, a, "howxm.eu", "\x00 .*>\xff", "evt_odd2", dedupe.InFlight, "evt_odd")
}

// TestDedupeForgetFreesTheKey: a claim forgotten (the event failed before
// it was stored) lets the sender's retry, on any gateway, be First.
func TestDedupeForgetFreesTheKey(t *testing.T) {
	_, a, b := twoGateways(t)
	wantSeen(t, a, "howxm", "1216", "evt_1", dedupe.First, "")
	wantSeen(t, b, "howxm", "1216", "evt_2", dedupe.InFlight, "evt_1")
	if err := a.Forget("howxm", []byte("1216"), []byte("evt_1")); err != nil {
		t.Fatal(err)
	}
	wantSeen(t, b, "howxm", "1216", "evt_3", dedupe.First, "")
	if err := b.Accept("howxm", []byte("1216"), []byte("evt_3"), time.Hour); err != nil {
		t.Fatal(err)
	}
	wantSeen(t, a, "howxm", "1216", "evt_4", dedupe.Duplicate, "evt_3")
	// Forgotten then claimed again on the same gateway, a few times: the
	// marker a Forget leaves must not get in the way.
	for i := range 3 {
		key := "again"
		ev := fmt.Sprintf("evt_again_%d", i)
		wantSeen(t, a, "howxm", key, ev, dedupe.First, "")
		if err := a.Forget("howxm", []byte(key), []byte(ev)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDedupeNeverTouchesAnotherEventsClaim: Accept and Forget are
// compare-and-set on the caller's own claim. Another event's claim is
// neither accepted nor forgotten, on the gateway that holds it or another,
// and a claim that expired and was taken over is not overwritten by its
// first owner finishing late.
func TestDedupeNeverTouchesAnotherEventsClaim(t *testing.T) {
	_, a, b := twoGateways(t)
	wantSeen(t, a, "howxm", "k", "evt_1", dedupe.First, "")
	// Begin is idempotent for the event holding the claim (a call that
	// timed out after the server stored it may be repeated).
	wantSeen(t, b, "howxm", "k", "evt_1", dedupe.First, "")
	for _, d := range []*Dedupe{a, b} {
		if err := d.Accept("howxm", []byte("k"), []byte("evt_2"), time.Hour); !errors.Is(err, ErrClaimLost) {
			t.Fatalf("Accept by another event: %v, want ErrClaimLost", err)
		}
		if err := d.Forget("howxm", []byte("k"), []byte("evt_2")); !errors.Is(err, ErrClaimLost) {
			t.Fatalf("Forget by another event: %v, want ErrClaimLost", err)
		}
	}
	wantSeen(t, b, "howxm", "k", "evt_3", dedupe.InFlight, "evt_1")
	if err := a.Accept("howxm", []byte("k"), []byte("evt_1"), time.Hour); err != nil {
		t.Fatal(err)
	}
	wantSeen(t, b, "howxm", "k", "evt_4", dedupe.Duplicate, "evt_1")
	// Accepted: forgetting or accepting it again as another event changes nothing.
	if err := b.Forget("howxm", []byte("k"), []byte("evt_4")); !errors.Is(err, ErrClaimLost) {
		t.Fatalf("Forget of an accepted key: %v, want ErrClaimLost", err)
	}
	wantSeen(t, a, "howxm", "k", "evt_5", dedupe.Duplicate, "evt_1")

	// evt_slow's claim expires while its request is still running; evt_new
	// takes the key over on the other gateway. evt_slow's late Accept (on
	// the revision it claimed) and Forget must not touch evt_new's claim.
	// The same for a late Forget, on a second key.
	a.inFlight, b.inFlight = time.Second, time.Second
	wantSeen(t, a, "howxm", "slow", "evt_slow", dedupe.First, "")
	wantSeen(t, a, "howxm", "slow2", "evt_slow2", dedupe.First, "")
	takeOver(t, b, "slow", "evt_new")
	takeOver(t, b, "slow2", "evt_new2")
	if err := a.Accept("howxm", []byte("slow"), []byte("evt_slow"), time.Hour); !errors.Is(err, ErrClaimLost) {
		t.Fatalf("late Accept: %v, want ErrClaimLost", err)
	}
	if err := a.Forget("howxm", []byte("slow2"), []byte("evt_slow2")); !errors.Is(err, ErrClaimLost) {
		t.Fatalf("late Forget: %v, want ErrClaimLost", err)
	}
	wantSeen(t, a, "howxm", "slow", "evt_x", dedupe.InFlight, "evt_new")
	wantSeen(t, a, "howxm", "slow2", "evt_x2", dedupe.InFlight, "evt_new2")
	// The first owner's Begin again (its request retried inside the
	// gateway) does not take the key back either.
	wantSeen(t, a, "howxm", "slow", "evt_slow", dedupe.InFlight, "evt_new")
	for _, key := range []string{"slow", "slow2"} {
		ev := "evt_new"
		if key == "slow2" {
			ev = "evt_new2"
		}
		if err := b.Accept("howxm", []byte(key), []byte(ev), time.Hour); err != nil {
			t.Fatalf("Accept of the claim that took %q over: %v", key, err)
		}
		wantSeen(t, a, "howxm", key, "evt_y", dedupe.Duplicate, ev)
	}
}

// takeOver begins key with eventID on d until it is First (the previous
// claim expired), checking it is InFlight until then.
func takeOver(t *testing.T, d *Dedupe, key, eventID string) {
	t.Helper()
	deadline := time.Now().Add(failAfter)
	for {
		_, seen := mustBegin(t, d, "howxm", key, eventID)
		if seen == dedupe.First {
			return
		}
		if seen != dedupe.InFlight {
			t.Fatalf("Begin of an expiring claim: %v, want in_flight then first", seen)
		}
		if time.Now().After(deadline) {
			t.Fatalf("claim on %q did not expire within %s", key, failAfter)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDedupeExpiry: an in-flight claim nobody accepts or forgets (its
// gateway died) expires on its own after inFlight, and an accepted key
// after its ttl; both are then First again.
func TestDedupeExpiry(t *testing.T) {
	_, a, b := twoGateways(t)
	a.inFlight = time.Second
	wantSeen(t, a, "howxm", "died", "evt_1", dedupe.First, "")
	wantSeen(t, b, "howxm", "died", "evt_2", dedupe.InFlight, "evt_1")
	takeOver(t, b, "died", "evt_3")

	wantSeen(t, a, "howxm", "short", "evt_4", dedupe.First, "")
	if err := a.Accept("howxm", []byte("short"), []byte("evt_4"), time.Second); err != nil {
		t.Fatal(err)
	}
	wantSeen(t, b, "howxm", "short", "evt_5", dedupe.Duplicate, "evt_4")
	deadline := time.Now().Add(failAfter)
	for {
		first, seen := mustBegin(t, b, "howxm", "short", "evt_6")
		if seen == dedupe.First {
			break
		}
		if seen != dedupe.Duplicate || string(first) != "evt_4" {
			t.Fatalf("Begin of an accepted key: %q %v, want duplicate of evt_4 until it expires", first, seen)
		}
		if time.Now().After(deadline) {
			t.Fatalf("accepted key did not expire within %s", failAfter)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A key accepted with the route's ttl (an hour here) does not expire
	// with the in-flight claim it replaced (1 s on a).
	wantSeen(t, a, "howxm", "long", "evt_7", dedupe.First, "")
	if err := a.Accept("howxm", []byte("long"), []byte("evt_7"), time.Hour); err != nil {
		t.Fatal(err)
	}
	claimExpired := time.Now().Add(3 * time.Second)
	for time.Now().Before(claimExpired) {
		time.Sleep(200 * time.Millisecond)
	}
	wantSeen(t, b, "howxm", "long", "evt_8", dedupe.Duplicate, "evt_7")
}

// TestDedupeAcrossRestarts: accepted keys are kept by JetStream, so a
// gateway restarted (a new connection and Dedupe), even with NATS itself
// restarted, still answers a repeat as a duplicate.
func TestDedupeAcrossRestarts(t *testing.T) {
	srv := natstest.Start(t)
	nc, js := dedupeConn(t, srv.URL())
	d, err := newDedupe(js, "hookgate", 1)
	if err != nil {
		t.Fatal(err)
	}
	wantSeen(t, d, "howxm", "1216", "evt_1", dedupe.First, "")
	if err := d.Accept("howxm", []byte("1216"), []byte("evt_1"), time.Hour); err != nil {
		t.Fatal(err)
	}
	nc.Close()

	_, js = dedupeConn(t, srv.URL())
	d, err = newDedupe(js, "hookgate", 1)
	if err != nil {
		t.Fatal(err)
	}
	wantSeen(t, d, "howxm", "1216", "evt_2", dedupe.Duplicate, "evt_1")

	srv.Restart()
	_, js = dedupeConn(t, srv.URL())
	d, err = newDedupe(js, "hookgate", 1)
	if err != nil {
		t.Fatal(err)
	}
	wantSeen(t, d, "howxm", "1216", "evt_3", dedupe.Duplicate, "evt_1")
}

// TestDedupeNATSDown: with NATS gone, Begin, Accept and Forget return an
// error once their timeout has passed (the caller answers 503) rather than
// holding the request; once NATS is back, they work again.
func TestDedupeNATSDown(t *testing.T) {
	srv, a, _ := twoGateways(t)
	a.timeout = 500 * time.Millisecond
	wantSeen(t, a, "howxm", "held", "evt_1", dedupe.First, "")
	srv.Shutdown()

	calls := []struct {
		name string
		f    func() error
	}{
		{"Begin", func() error {
			_, _, err := a.Begin("howxm", []byte("k"), []byte("evt_2"))
			return err
		}},
		{"Accept", func() error { return a.Accept("howxm", []byte("held"), []byte("evt_1"), time.Hour) }},
		{"Forget", func() error { return a.Forget("howxm", []byte("held"), []byte("evt_1")) }},
	}
	for _, c := range calls {
		done := make(chan error, 1)
		go func() { done <- c.f() }()
		select {
		case err := <-done:
			if err == nil || errors.Is(err, ErrClaimLost) {
				t.Fatalf("%s with NATS down: %v, want a NATS error", c.name, err)
			}
			t.Logf("%s with NATS down: %v", c.name, err)
		case <-time.After(failAfter):
			t.Fatalf("%s with NATS down did not return within %s (timeout %s)", c.name, failAfter, a.timeout)
		}
	}

	srv.Restart()
	deadline := time.Now().Add(failAfter)
	for {
		_, seen, err := a.Begin("howxm", []byte("after"), []byte("evt_3"))
		if err == nil {
			if seen != dedupe.First {
				t.Fatalf("Begin after NATS came back: %v, want first", seen)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Begin still failing %s after NATS came back: %v", failAfter, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDedupeKey: any bytes, and any route name (with dots), make a valid
// KV key; distinct routes and keys make distinct keys.
func TestDedupeKey(t *testing.T) {
	seen := map[string]string{}
	for _, c := range []struct{ route, key string }{
		{"howxm", "1216"}, {"howxm", "1217"}, {"howxm.eu", "1216"}, {"howxm", ""},
		{"a", "b\x00\xff.*>"}, {"a.b", "c"}, {"a", "b.c"},
	} {
		k := dedupeKey(c.route, []byte(c.key))
		for i := 0; i < len(k); i++ {
			ch := k[i]
			if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_' || ch == '=' || ch == '.') {
				t.Fatalf("dedupeKey(%q, %q) = %q: byte %q is not valid in a KV key", c.route, c.key, k, ch)
			}
		}
		if k[0] == '.' || k[len(k)-1] == '.' || strings.Contains(k, "..") {
			t.Fatalf("dedupeKey(%q, %q) = %q: an empty KV key token", c.route, c.key, k)
		}
		if prev, ok := seen[k]; ok {
			t.Fatalf("dedupeKey(%q, %q) = %q, the same as %s", c.route, c.key, k, prev)
		}
		seen[k] = fmt.Sprintf("%q/%q", c.route, c.key)
	}
	if got := wholeSeconds(1500 * time.Millisecond); got != 2*time.Second {
		t.Fatalf("wholeSeconds(1.5s) = %v, want 2s", got)
	}
	if got := wholeSeconds(time.Millisecond); got != time.Second {
		t.Fatalf("wholeSeconds(1ms) = %v, want 1s", got)
	}
}

// TestDedupeCluster: on a 3-node cluster with R3 buckets (where a failed
// compare-and-set is error 10164, not 10071, and a read may be answered by
// a replica a little behind), two gateways on different nodes still get
// exactly one First per key, the winner's Accept (on the revision its
// claim got, with no read) succeeds, and a repeat is never First again.
func TestDedupeCluster(t *testing.T) {
	c := natstest.Cluster(t, 3)
	var ds [2]*Dedupe
	for i, node := range []int{0, 2} {
		_, js := dedupeConn(t, c.Node(node).URL())
		var err error
		deadline := time.Now().Add(failAfter)
		for {
			// The first bucket creation can race the cluster's placement.
			if ds[i], err = newDedupe(js, "hookgate", 3); err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		// The bucket's stream elects its leader after it is created; a
		// claim sent before that gets no answer ("no response from
		// stream"), which a gateway answers with a 503 to retry.
		waitStreamLeader(t, js, "KV_hookgate_dedupe", 3)
	}
	// A leader the stream info names may still not answer every node's
	// requests for a moment (CI saw round 0's claim get "no response from
	// stream" after waitStreamLeader): each gateway first makes a claim of
	// its own until one is answered, as a sender retries a 503.
	for g := range ds {
		deadline := time.Now().Add(failAfter)
		for {
			_, _, err := ds[g].Begin("howxm", []byte(fmt.Sprintf("warmup_%d", g)), []byte(fmt.Sprintf("evt_warmup_%d", g)))
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("gateway %d: no claim answered within %v: %v", g, failAfter, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for i := range 20 {
		key := fmt.Sprintf("msg_%d", i)
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			seens [2]dedupe.Seen
			errs  [2]error
		)
		for g := range ds {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, seens[g], errs[g] = ds[g].Begin("howxm", []byte(key), []byte(fmt.Sprintf("evt_%d_%d", i, g)))
			}()
		}
		close(start)
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("round %d: %v, %v", i, errs[0], errs[1])
		}
		if (seens[0] == dedupe.First) == (seens[1] == dedupe.First) {
			t.Fatalf("round %d: %v and %v, want exactly one first", i, seens[0], seens[1])
		}
		won := 0
		if seens[1] == dedupe.First {
			won = 1
		}
		winner := fmt.Sprintf("evt_%d_%d", i, won)
		if err := ds[won].Accept("howxm", []byte(key), []byte(winner), time.Hour); err != nil {
			t.Fatalf("round %d: Accept: %v", i, err)
		}
		deadline := time.Now().Add(failAfter)
		for {
			first, seen := mustBegin(t, ds[1-won], "howxm", key, fmt.Sprintf("evt_%d_retry", i))
			if seen == dedupe.First {
				t.Fatalf("round %d: a repeat after Accept was first", i)
			}
			if seen == dedupe.Duplicate {
				if string(first) != winner {
					t.Fatalf("round %d: duplicate of %q, want %q", i, first, winner)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: still %v %s after Accept", i, seen, failAfter)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// A claim forgotten on one node is free on the other.
	wantSeen(t, ds[0], "howxm", "forget", "evt_f1", dedupe.First, "")
	if err := ds[0].Forget("howxm", []byte("forget"), []byte("evt_f1")); err != nil {
		t.Fatal(err)
	}
	takeOver(t, ds[1], "forget", "evt_f2")
}
