package dispatch

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/queue"
	"github.com/hookgate/hookgate/gateway/target"
)

// arrival is one request an orderTarget received.
type arrival struct {
	id     string // delivery id
	key    string // customer.uid
	n      int    // position in its key's ingest order, from 1
	status int    // what the target answered
}

// orderTarget is a real HTTP server on 127.0.0.1 that records every
// request in arrival order and checks, as it goes, that no two requests of
// one key are ever in flight together. fail decides each answer.
type orderTarget struct {
	srv *httptest.Server

	mu       sync.Mutex
	log      []arrival
	inFlight map[string]int
	overlap  []string // keys that had two requests in flight at once
	total    int      // requests in flight, any key
	maxTotal int
	ok       map[string]bool // deliveries answered 200 at least once
	changed  chan struct{}
	fail     func(a arrival, log []arrival) int // 0: answer 200
}

func startOrderTarget(t *testing.T, fail func(a arrival, log []arrival) int) *orderTarget {
	ot := &orderTarget{inFlight: map[string]int{}, ok: map[string]bool{}, changed: make(chan struct{}, 1), fail: fail}
	ot.srv = httptest.NewServer(http.HandlerFunc(ot.serve))
	t.Cleanup(ot.srv.Close)
	return ot
}

func (ot *orderTarget) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var in struct {
		Customer struct {
			UID string `json:"uid"`
		} `json:"customer"`
		N int `json:"n"`
	}
	json.Unmarshal(body, &in)
	a := arrival{id: r.Header.Get(idHeader), key: in.Customer.UID, n: in.N, status: 200}
	ot.mu.Lock()
	ot.total++
	ot.maxTotal = max(ot.maxTotal, ot.total)
	ot.inFlight[a.key]++
	if ot.inFlight[a.key] > 1 {
		ot.overlap = append(ot.overlap, a.id)
	}
	if ot.fail != nil {
		if s := ot.fail(a, ot.log); s != 0 {
			a.status = s
		}
	}
	ot.mu.Unlock()
	time.Sleep(2 * time.Millisecond) // long enough for a second request of the key to overlap, were it sent
	ot.mu.Lock()
	ot.inFlight[a.key]--
	ot.total--
	ot.log = append(ot.log, a)
	if a.status == 200 {
		ot.ok[a.id] = true
	}
	ot.mu.Unlock()
	select {
	case ot.changed <- struct{}{}:
	default:
	}
	w.WriteHeader(a.status)
}

// waitOK waits until n deliveries were answered 200, failing after a
// minute.
func (ot *orderTarget) waitOK(t *testing.T, n int) []arrival {
	t.Helper()
	deadline := time.After(time.Minute) // a failure timeout, not a measurement
	for {
		ot.mu.Lock()
		ok, log := len(ot.ok), append([]arrival(nil), ot.log...)
		ot.mu.Unlock()
		if ok >= n {
			return log
		}
		select {
		case <-ot.changed:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%d of %d deliveries answered 200 after a minute; arrivals: %v", ok, n, log)
		}
	}
}

// checkOrder checks what a fifo target saw: per key, every delivery's
// first request came only after the one before it was answered 200 (or
// given up, in dead), in ingest order, and no two requests of a key were
// in flight together. A request again for a delivery already answered 200
// (at-least-once after a crash) is allowed.
func (ot *orderTarget) checkOrder(t *testing.T, log []arrival, dead map[string]bool) {
	t.Helper()
	ot.mu.Lock()
	overlap := ot.overlap
	ot.mu.Unlock()
	if len(overlap) != 0 {
		t.Errorf("requests of one key in flight together: %v", overlap)
	}
	done := map[string]int{} // per key: the highest n delivered (or dead)
	seen := map[string]bool{}
	for i, a := range log {
		if !seen[a.id] && a.n != done[a.key]+1 {
			t.Fatalf("arrival %d: %s (%s #%d) first sent while #%d of its key was not yet delivered; arrivals: %v",
				i, a.id, a.key, a.n, done[a.key]+1, log)
		}
		seen[a.id] = true
		if (a.status == 200 || dead[a.id]) && a.n > done[a.key] {
			done[a.key] = a.n
		}
	}
}

// fifoTarget is a fifo target on ot keyed by customer.uid, with short
// retry intervals and no breaker.
func fifoTarget(base, orderKey string) config.Target {
	u, err := url.Parse(base + "/crm")
	if err != nil {
		panic(err)
	}
	return config.Target{
		Name: "crm", URL: u, Timeout: 3 * time.Second, MaxConns: 4, IDHeader: idHeader,
		Retry: config.Retry{MaxAttempts: 1000, Initial: 10 * time.Millisecond, Max: 20 * time.Millisecond, MaxAge: time.Hour},
		Order: config.OrderFIFO, OrderKey: orderKey,
	}
}

// customerEvent is delivery n of customer key.
func customerEvent(key string, n int) delivery.Delivery {
	id := fmt.Sprintf("evt_%s%d.0", key, n)
	return delivery.Delivery{ID: []byte(id), EventID: []byte(id), Route: "r", Target: "crm",
		Body: fmt.Appendf(nil, `{"customer":{"uid":%q,"name":"Ann"},"n":%d}`, key, n)}
}

// TestFIFOFailingKeyWaitsOthersFlow is issue 15's scenario: a fifo target
// keyed by customer fails the first 3 attempts for customer A (and keeps
// failing A until all of B has arrived, so B must flow while A is held
// up: were B stuck behind A, nothing would arrive). Later A events wait
// for A's head; A arrives in order, and B in order.
func TestFIFOFailingKeyWaitsOthersFlow(t *testing.T) {
	ot := startOrderTarget(t, func(a arrival, log []arrival) int {
		if a.key != "A" {
			return 0
		}
		failed, bDone := 0, 0
		for _, x := range log {
			if x.key == "A" && x.status != 200 {
				failed++
			}
			if x.key == "B" && x.status == 200 {
				bDone++
			}
		}
		if failed < 3 || bDone < 5 {
			return 503
		}
		return 0
	})
	r := start(t, "", fifoTarget(ot.srv.URL, "customer.uid"))
	for n := 1; n <= 5; n++ { // ingest order: A1 B1 A2 B2 ...
		r.enqueue(customerEvent("A", n))
		r.enqueue(customerEvent("B", n))
	}
	log := ot.waitOK(t, 10)
	ot.checkOrder(t, log, nil)

	var a []string
	aFailed := 0
	for _, x := range log {
		if x.key == "A" {
			a = append(a, fmt.Sprintf("%d:%d", x.n, x.status))
			if x.status != 200 {
				aFailed++
			}
		}
	}
	if aFailed < 3 || !strings.HasPrefix(strings.Join(a, " "), "1:503 1:503 1:503") {
		t.Errorf("A's requests %v: want its head failing at least 3 times first", a)
	}
	// Every B before A1 got through: B flowed while A was held up.
	firstA := -1
	for i, x := range log {
		if x.key == "A" && x.status == 200 {
			firstA = i
			break
		}
	}
	for _, x := range log[firstA:] {
		if x.key == "B" {
			t.Errorf("B #%d arrived after A's head was delivered; B must not wait for A", x.n)
		}
	}
	r.waitStats("crm", "drained", settled)
}

// TestFIFOWholeTargetOneAtATime: without order_key the whole target is one
// sequence: one request at a time though the target has 4 connections,
// in ingest order, its head's failures holding up everything behind it.
func TestFIFOWholeTargetOneAtATime(t *testing.T) {
	ot := startOrderTarget(t, func(a arrival, log []arrival) int {
		if a.n == 1 && len(log) < 3 {
			return 503
		}
		return 0
	})
	r := start(t, "", fifoTarget(ot.srv.URL, ""))
	for n := 1; n <= 8; n++ {
		r.enqueue(customerEvent(fmt.Sprint("K", n%3), n)) // keys in the body are ignored
	}
	log := ot.waitOK(t, 8)
	var got []string
	for _, x := range log {
		got = append(got, fmt.Sprintf("%d:%d", x.n, x.status))
	}
	want := "1:503 1:503 1:503 1:200 2:200 3:200 4:200 5:200 6:200 7:200 8:200"
	if strings.Join(got, " ") != want {
		t.Fatalf("requests %v, want %s", got, want)
	}
	ot.mu.Lock()
	maxTotal := ot.maxTotal
	ot.mu.Unlock()
	if maxTotal != 1 {
		t.Errorf("%d requests in flight at once, want 1", maxTotal)
	}
	r.waitStats("crm", "drained", settled)
}

// TestFIFODeadHeadLetsNextGo: a head the target refuses (4xx: dead at
// once) is dead-lettered and the next one of its key goes; replayed, it
// goes to the back of its key's sequence.
func TestFIFODeadHeadLetsNextGo(t *testing.T) {
	ot := startOrderTarget(t, func(a arrival, log []arrival) int {
		for _, x := range log {
			if x.id == a.id {
				return 0 // the replay
			}
		}
		if a.key == "A" && a.n == 1 {
			return 422
		}
		return 0
	})
	r := start(t, "", fifoTarget(ot.srv.URL, "customer.uid"))
	for n := 1; n <= 3; n++ {
		r.enqueue(customerEvent("A", n))
	}
	log := ot.waitOK(t, 2)
	ot.checkOrder(t, log, map[string]bool{"evt_A1.0": true})
	st := r.waitStats("crm", "drained", settled)
	if st.Dead != 1 {
		t.Fatalf("stats %+v, want A1 dead", st)
	}
	r.enqueue(customerEvent("A", 4))
	ot.waitOK(t, 3)
	if err := r.store.Replay("evt_A1.0"); err != nil {
		t.Fatal(err)
	}
	r.enqueue(customerEvent("A", 5))
	log = ot.waitOK(t, 5)
	var got []string
	for _, x := range log {
		got = append(got, fmt.Sprintf("%s:%d", x.id, x.status))
	}
	want := "evt_A1.0:422 evt_A2.0:200 evt_A3.0:200 evt_A4.0:200 evt_A1.0:200 evt_A5.0:200"
	if strings.Join(got, " ") != want {
		t.Fatalf("requests %v, want %s (the replayed A1 after A4, enqueued before the replay)", got, want)
	}
}

// TestFIFORestartKeepsOrder: stopping the dispatcher and closing the store
// while A's head is failing and A's others wait, then starting again on
// the same directory, delivers A in order.
func TestFIFORestartKeepsOrder(t *testing.T) {
	var up sync.Mutex
	healthy := false
	ot := startOrderTarget(t, func(a arrival, log []arrival) int {
		up.Lock()
		defer up.Unlock()
		if !healthy && a.key == "A" {
			return 503
		}
		return 0
	})
	dir := t.TempDir()
	r := start(t, dir, fifoTarget(ot.srv.URL, "customer.uid"))
	for n := 1; n <= 4; n++ {
		r.enqueue(customerEvent("A", n))
		r.enqueue(customerEvent("B", n))
	}
	ot.waitOK(t, 4) // all of B
	deadline := time.Now().Add(time.Minute)
	for { // A's head has failed a few times
		ot.mu.Lock()
		n := len(ot.log)
		ot.mu.Unlock()
		if n >= 7 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("A's head was not attempted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.stop()

	up.Lock()
	healthy = true
	up.Unlock()
	r = start(t, dir, fifoTarget(ot.srv.URL, "customer.uid"))
	log := ot.waitOK(t, 8)
	ot.checkOrder(t, log, nil)
	r.waitStats("crm", "drained", settled)
}

// TestFIFOHelperProcess is the child of TestFIFOKilledMidSequence: it opens
// the store in HOOKGATE_FIFO_DIR, enqueues customers A and B's 20 events
// each (A1 B1 A2 B2 ...), says "ready", and
// delivers them to HOOKGATE_FIFO_URL until it is killed.
func TestFIFOHelperProcess(t *testing.T) {
	dir := os.Getenv("HOOKGATE_FIFO_DIR")
	if dir == "" {
		t.Skip("helper process for TestFIFOKilledMidSequence")
	}
	st, err := queue.Open(queue.Options{Path: dir, Sync: queue.SyncAlways})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	cfg := fifoTarget(os.Getenv("HOOKGATE_FIFO_URL"), "customer.uid")
	set, err := target.NewSet([]config.Target{cfg})
	if err != nil {
		fmt.Println("targets:", err)
		os.Exit(2)
	}
	d := New(st, set, []config.Target{cfg}, Options{Poll: 50 * time.Millisecond})
	for n := 1; n <= 20; n++ {
		if err := d.Enqueue([]delivery.Delivery{customerEvent("A", n)}); err != nil {
			fmt.Println("enqueue:", err)
			os.Exit(2)
		}
		if err := d.Enqueue([]delivery.Delivery{customerEvent("B", n)}); err != nil {
			fmt.Println("enqueue:", err)
			os.Exit(2)
		}
	}
	fmt.Println("ready")
	d.Start()
	select {} // until SIGKILL
}

// TestFIFOKilledMidSequence: a process delivering two customers' events
// to a fifo target (A's head failing its first 3 attempts) is killed with
// SIGKILL mid-sequence; a dispatcher started on its queue delivers the
// rest. Per customer, every event was first sent only after the one
// before it was delivered, nothing was lost, and no two of a customer's
// requests were ever in flight together, across both processes.
func TestFIFOKilledMidSequence(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	ot := startOrderTarget(t, func(a arrival, log []arrival) int {
		failed := 0
		for _, x := range log {
			if x.key == "A" && x.status != 200 {
				failed++
			}
		}
		if a.key == "A" && failed < 3 {
			return 503
		}
		return 0
	})
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFIFOHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "HOOKGATE_FIFO_DIR="+dir, "HOOKGATE_FIFO_URL="+ot.srv.URL)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || sc.Text() != "ready" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper: %q", sc.Text())
	}
	ot.waitOK(t, 12)   // mid-sequence: A's head has failed and been delivered, B is ahead
	cmd.Process.Kill() // SIGKILL: requests in flight are cut, nothing is closed
	cmd.Wait()
	// Requests the killed process had sent are still being answered: a
	// restart that resends one while its first copy is at the target is
	// a crash's at-least-once, not a broken order. Start once they are done.
	before := 0
	for idle := false; !idle; {
		ot.mu.Lock()
		idle, before = ot.total == 0, len(ot.log)
		ot.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}

	r := start(t, dir, fifoTarget(ot.srv.URL, "customer.uid"))
	log := ot.waitOK(t, 40)
	ot.checkOrder(t, log, nil)
	delivered := map[string]bool{}
	for _, x := range log {
		if x.status == 200 {
			delivered[x.id] = true
		}
	}
	for _, k := range []string{"A", "B"} {
		for n := 1; n <= 20; n++ {
			if id := fmt.Sprintf("evt_%s%d.0", k, n); !delivered[id] {
				t.Errorf("%s never delivered", id)
			}
		}
	}
	r.waitStats("crm", "drained", settled)
	t.Logf("%d requests before the kill, %d after", before, len(log)-before)
}

// TestOrderKey: the key is the value at order_key; bodies without one
// share the empty key.
func TestOrderKey(t *testing.T) {
	for _, tt := range []struct{ body, key string }{
		{`{"customer":{"uid":"u1"}}`, "u1"},
		{`{"customer":{"uid":"u\u0031"}}`, "u1"},
		{`{"customer":{"uid":42}}`, "42"},
		{`{"customer":{"uid":{"a":1}}}`, `{"a":1}`},
		{`{"customer":{"uid":null}}`, ""},
		{`{"customer":{}}`, ""},
		{`{"customer":{"uid":""}}`, ""},
		{`not json {"customer":{"uid":"u1"}}`, ""},
		{``, ""},
	} {
		if got := string(orderKey(nil, []byte(tt.body), "customer.uid")); got != tt.key {
			t.Errorf("%s: key %q, want %q", tt.body, got, tt.key)
		}
	}
}

// TestEnqueueMarksOrdered: Enqueue marks deliveries to a fifo target, and
// only those, and a reload changes what later deliveries get.
func TestEnqueueMarksOrdered(t *testing.T) {
	ot := startOrderTarget(t, nil)
	fifo := fifoTarget(ot.srv.URL, "customer.uid")
	plain := fifo
	plain.Name, plain.Order, plain.OrderKey = "plain", "", ""
	set, err := target.NewSet([]config.Target{fifo, plain})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	d := New(nil, set, []config.Target{fifo, plain}, Options{})
	ds := []delivery.Delivery{customerEvent("A", 1), customerEvent("A", 2)}
	ds[1].Target = "plain"
	ds[1].Ordered = true // a stale mark is cleared
	d.cur.Load().sequence(ds)
	if !ds[0].Ordered || string(ds[0].OrderKey) != "A" || ds[1].Ordered || len(ds[1].OrderKey) != 0 {
		t.Fatalf("fifo: %v %q; plain: %v %q", ds[0].Ordered, ds[0].OrderKey, ds[1].Ordered, ds[1].OrderKey)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Reload(ctx, set, []config.Target{plain}); err != nil {
		t.Fatal(err)
	}
	d.cur.Load().sequence(ds[:1])
	if ds[0].Ordered {
		t.Fatal("still ordered after a reload removed order")
	}
}

// TestFIFOBacklogDrainsWithoutPolling: a delivered head wakes its lane, so
// a backlog of one key drains at once, one after the other, rather than
// one per poll (1s by default; an hour here, so waiting for it would time
// the test out).
func TestFIFOBacklogDrainsWithoutPolling(t *testing.T) {
	ot := startOrderTarget(t, nil)
	cfg := fifoTarget(ot.srv.URL, "customer.uid")
	st, err := queue.Open(queue.Options{Path: t.TempDir(), Sync: queue.SyncBatch})
	if err != nil {
		t.Fatal(err)
	}
	set, err := target.NewSet([]config.Target{cfg})
	if err != nil {
		t.Fatal(err)
	}
	d := New(st, set, []config.Target{cfg}, Options{Poll: time.Hour})
	d.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d.Stop(ctx)
		st.Close()
		set.Close()
	})
	var ds []delivery.Delivery
	for n := 1; n <= 20; n++ {
		ds = append(ds, customerEvent("A", n))
	}
	if err := d.Enqueue(ds); err != nil { // one call: one wake
		t.Fatal(err)
	}
	log := ot.waitOK(t, 20)
	ot.checkOrder(t, log, nil)
}
