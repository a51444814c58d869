package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/queue"
	"github.com/hookgate/hookgate/internal/natstest"
	"github.com/hookgate/hookgate/internal/sink"
	"github.com/hookgate/hookgate/internal/syncbuf"
	"github.com/hookgate/hookgate/internal/testport"
)

// natsGateway is one gateway of a test's fleet: its own listeners and
// config file, the shared stream.
type natsGateway struct {
	srv    *Server
	ingest string // base URL
	admin  string // base URL
}

// natsConfig is a config for a fleet on one stream; extra is appended
// (more routes, targets). Every gateway of a test uses the same text, as
// a fleet behind a load balancer would.
func natsConfig(natsURL, target, extra string) string {
	return `
[server]
listen = "LISTEN"
shutdown_timeout = "5s"

[admin]
listen = "ADMIN"

[queue]
backend = "nats"
[queue.nats]
urls = ["` + natsURL + `"]
stream = "fleet"

[[target]]
name = "crm"
url = "` + target + `/crm"
retry = { initial = "100ms", max = "200ms", max_attempts = 3 }

[[route]]
name = "queued"
path = "/hooks/queued"
targets = ["crm"]
` + extra
}

// startGateway starts one gateway of the fleet in-process; stop it with
// Stop (t.Cleanup does it too, once).
func startGateway(t *testing.T, cfgText string) *natsGateway {
	t.Helper()
	return startGatewayLogged(t, cfgText, io.Discard)
}

// startGatewayLogged is startGateway with its log lines (text) in log.
func startGatewayLogged(t *testing.T, cfgText string, log io.Writer) *natsGateway {
	t.Helper()
	listen, adminListen := testport.Addr(t), testport.Addr(t)
	path := filepath.Join(t.TempDir(), "config.toml")
	cfgText = strings.NewReplacer("LISTEN", listen, "ADMIN", adminListen).Replace(cfgText)
	if err := os.WriteFile(path, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	s := New(cfg, Options{Path: path, Version: "test", Logger: slog.New(slog.NewTextHandler(log, nil))})
	if err := s.Start(context.Background()); err != nil {
		s.Stop()
		t.Fatal(err)
	}
	var once sync.Once
	g := &natsGateway{srv: s, ingest: "http://" + listen, admin: "http://" + adminListen}
	t.Cleanup(func() { once.Do(func() { s.Stop() }) })
	return g
}

func postEvent(t *testing.T, url, body string, header ...string) (int, string) {
	t.Helper()
	h := http.Header{"Content-Type": {"application/json"}}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	return fetch(t, http.MethodPost, url, h, body)
}

// deliveryIDs counts the deliveries the sink received, by delivery id.
func deliveryIDs(reqs []sink.Request) map[string]int {
	ids := map[string]int{}
	for _, r := range reqs {
		ids[r.Header(config.DefaultIDHeader)]++
	}
	return ids
}

// waitGateways waits until every gateway sees n gateways on the stream
// (their heartbeats), so rate limits are divided before a test measures.
func waitGateways(t *testing.T, n int, gs ...*natsGateway) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d gateways to see each other", n), func() bool {
		for _, g := range gs {
			_, e, _ := g.srv.live()
			sh, ok := e.(queue.Shared)
			if !ok || sh.Gateways() != n {
				return false
			}
		}
		return true
	})
}

// TestNATSGatewaysShareTheQueue: three gateways on one stream, events
// sent to all three at once: every acknowledged event reaches the sink
// exactly once, whichever gateway took it and whichever delivered it.
func TestNATSGatewaysShareTheQueue(t *testing.T) {
	ns := natstest.Start(t)
	snk := startSink(t)
	cfg := natsConfig(ns.URL(), snk.URL(), "")
	gs := []*natsGateway{startGateway(t, cfg), startGateway(t, cfg), startGateway(t, cfg)}

	const perGateway = 100
	var wg sync.WaitGroup
	accepted := make(chan string, 3*perGateway)
	for gi, g := range gs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perGateway {
				code, body := postEvent(t, g.ingest+"/hooks/queued", fmt.Sprintf(`{"gateway":%d,"n":%d}`, gi, i))
				if code != http.StatusAccepted {
					t.Errorf("gateway %d event %d: %d %s", gi, i, code, body)
					continue
				}
				accepted <- body
			}
		}()
	}
	wg.Wait()
	close(accepted)
	n := len(accepted)
	if n != 3*perGateway {
		t.Fatalf("%d of %d events accepted", n, 3*perGateway)
	}
	reqs, err := snk.Wait(n, 60*time.Second)
	if err != nil {
		t.Fatalf("%d of %d deliveries arrived: %v", len(snk.Requests()), n, err)
	}
	time.Sleep(500 * time.Millisecond) // a duplicate would arrive now
	ids := deliveryIDs(snk.Requests())
	if len(ids) != n {
		t.Errorf("%d distinct deliveries for %d events", len(ids), n)
	}
	for id, c := range ids {
		if c != 1 {
			t.Errorf("delivery %s arrived %d times in normal operation", id, c)
		}
	}
	_ = reqs
}

// TestNATSDelayNotEarlyOnAnotherGateway: a delayed event accepted by one
// gateway, which then stops, is delivered by the other, and not before
// its time.
func TestNATSDelayNotEarlyOnAnotherGateway(t *testing.T) {
	ns := natstest.Start(t)
	snk := startSink(t)
	cfg := natsConfig(ns.URL(), snk.URL(), `
[[route]]
name = "later"
path = "/hooks/later"
targets = ["crm"]
delay = "3s"
`)
	a, b := startGateway(t, cfg), startGateway(t, cfg)
	sent := time.Now()
	if code, body := postEvent(t, a.ingest+"/hooks/later", `{"n":1}`); code != http.StatusAccepted {
		t.Fatalf("%d %s", code, body)
	}
	if err := a.srv.Stop(); err != nil {
		t.Fatal(err)
	}
	reqs, err := snk.Wait(1, 30*time.Second)
	if err != nil {
		t.Fatal("the other gateway never delivered the delayed event")
	}
	if early := reqs[0].At.Sub(sent); early < 3*time.Second {
		t.Errorf("delivered %v after it was sent, before its delay of 3s", early)
	}
	_ = b
}

// TestNATSDedupeAcrossGateways: a repeat sent to the other gateway is
// answered as a duplicate of the first, and delivered once.
func TestNATSDedupeAcrossGateways(t *testing.T) {
	ns := natstest.Start(t)
	snk := startSink(t)
	cfg := natsConfig(ns.URL(), snk.URL(), `
[[route]]
name = "once"
path = "/hooks/once"
targets = ["crm"]
dedupe = { header = "Webhook-Id", ttl = "1h" }
`)
	a, b := startGateway(t, cfg), startGateway(t, cfg)
	code, first := postEvent(t, a.ingest+"/hooks/once", `{"n":1}`, "Webhook-Id", "evt-42")
	if code != http.StatusAccepted {
		t.Fatalf("first: %d %s", code, first)
	}
	code, repeat := postEvent(t, b.ingest+"/hooks/once", `{"n":1}`, "Webhook-Id", "evt-42")
	if code != http.StatusAccepted || !strings.Contains(repeat, `"duplicate":true`) {
		t.Fatalf("repeat on the other gateway: %d %s, want 202 duplicate", code, repeat)
	}
	if id := between(first, `"event_id":"`, `"`); id == "" || !strings.Contains(repeat, id) {
		t.Errorf("the repeat's answer %s does not name the first event %s", repeat, first)
	}
	// A different key is taken, by either gateway.
	if code, body := postEvent(t, b.ingest+"/hooks/once", `{"n":2}`, "Webhook-Id", "evt-43"); code != http.StatusAccepted || strings.Contains(body, "duplicate") {
		t.Fatalf("another key: %d %s", code, body)
	}
	if _, err := snk.Wait(2, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if n := snk.Count(); n != 2 {
		t.Errorf("sink got %d deliveries, want 2 (the repeat delivered?)", n)
	}
}

func between(s, from, to string) string {
	i := strings.Index(s, from)
	if i < 0 {
		return ""
	}
	s = s[i+len(from):]
	if j := strings.Index(s, to); j >= 0 {
		return s[:j]
	}
	return ""
}

// TestNATSDeadLettersFromEitherGateway: a delivery dead-lettered by one
// gateway is listed by the other and replayed through it.
func TestNATSDeadLettersFromEitherGateway(t *testing.T) {
	ns := natstest.Start(t)
	snk, err := sink.Start("127.0.0.1:0", sink.Options{Statuses: []int{400}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { snk.Close() })
	cfg := natsConfig(ns.URL(), snk.URL(), "")
	a, b := startGateway(t, cfg), startGateway(t, cfg)
	if code, body := postEvent(t, a.ingest+"/hooks/queued", `{"n":1}`); code != http.StatusAccepted {
		t.Fatalf("%d %s", code, body)
	}
	var id string
	waitFor(t, "the dead letter on the other gateway", func() bool {
		code, v := call(t, http.MethodGet, b.admin+"/admin/dead")
		items, _ := v["dead"].([]any)
		if code != http.StatusOK || len(items) != 1 {
			return false
		}
		id, _ = items[0].(map[string]any)["id"].(string)
		return true
	})
	if code, v := call(t, http.MethodPost, b.admin+"/admin/dead/"+id+"/replay"); code != http.StatusOK {
		t.Fatalf("replay through the other gateway: %d %v", code, v)
	}
	reqs, err := snk.Wait(2, 30*time.Second)
	if err != nil {
		t.Fatal("the replayed delivery never arrived")
	}
	if got := reqs[1].Header(config.DefaultIDHeader); got != id {
		t.Errorf("replayed delivery id %q, want %q", got, id)
	}
	waitFor(t, "no dead letters left", func() bool {
		_, v := call(t, http.MethodGet, a.admin+"/admin/dead")
		items, _ := v["dead"].([]any)
		return len(items) == 0
	})
}

// TestNATSDownAnswers503: with NATS gone, ingest answers 503 with
// Retry-After (never a 202 for something not stored) and /readyz is not
// ready; once it is back, events are taken and delivered again.
func TestNATSDownAnswers503(t *testing.T) {
	ns := natstest.Start(t)
	snk := startSink(t)
	var log syncbuf.Buffer
	g := startGatewayLogged(t, natsConfig(ns.URL(), snk.URL(), ""), &log)
	if code, body := postEvent(t, g.ingest+"/hooks/queued", `{"n":1}`); code != http.StatusAccepted {
		t.Fatalf("%d %s", code, body)
	}
	if _, err := snk.Wait(1, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	ns.Shutdown()
	// The idle lane polls every 250 ms; a claim sent just before the
	// connection went waits for its answer first. Once one has failed,
	// a second more of polls must not log again.
	waitFor(t, "a failed claim in the log", func() bool { return strings.Contains(log.String(), "claim failed") })
	time.Sleep(time.Second)
	req, _ := http.NewRequest(http.MethodPost, g.ingest+"/hooks/queued", strings.NewReader(`{"n":2}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("NATS down: %d Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	waitFor(t, "/readyz not ready", func() bool {
		code, _ := fetch(t, http.MethodGet, g.admin+"/readyz", nil, "")
		return code == http.StatusServiceUnavailable
	})
	ns.Restart()
	waitFor(t, "ingest to take events again", func() bool {
		code, _ := postEvent(t, g.ingest+"/hooks/queued", `{"n":3}`)
		return code == http.StatusAccepted
	})
	if _, err := snk.Wait(2, 30*time.Second); err != nil {
		t.Fatal("the event taken after NATS came back was not delivered")
	}
	// The outage is logged once, not once a poll, and so is the end of it.
	if n := strings.Count(log.String(), "claim failed"); n != 1 {
		t.Errorf("%d \"claim failed\" lines for one outage, want 1:\n%s", n, log.String())
	}
	waitFor(t, "the log to say claims work again", func() bool { return strings.Contains(log.String(), "claims work again") })
}

// TestNATSRateLimitDivided: two gateways deliver one target's backlog
// under rate_limit = 10/s together, not 10/s each. The bound is one-sided
// (a slow machine only makes it slower): 40 deliveries at 10/s with a
// burst of 1 take at least ~3.9 s; at 10/s each they would take ~2 s.
func TestNATSRateLimitDivided(t *testing.T) {
	ns := natstest.Start(t)
	snk := startSink(t)
	cfg := natsConfig(ns.URL(), snk.URL(), `
[[target]]
name = "slowapi"
url = "`+snk.URL()+`/slow"
rate_limit = 10.0
burst = 1

[[route]]
name = "limited"
path = "/hooks/limited"
targets = ["slowapi"]
`)
	a, b := startGateway(t, cfg), startGateway(t, cfg)
	waitGateways(t, 2, a, b)
	const n = 40
	for i := range n {
		g := a
		if i%2 == 1 {
			g = b
		}
		if code, body := postEvent(t, g.ingest+"/hooks/limited", fmt.Sprintf(`{"n":%d}`, i)); code != http.StatusAccepted {
			t.Fatalf("%d %s", code, body)
		}
	}
	reqs, err := snk.Wait(n, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	took := reqs[n-1].At.Sub(reqs[0].At)
	if took < 3500*time.Millisecond {
		t.Errorf("%d deliveries took %v: faster than one rate_limit of 10/s allows (%v); the gateways did not divide it", n, took, 3900*time.Millisecond)
	}
	t.Logf("%d deliveries under a shared 10/s took %v", n, took)
}

// TestNATSClusterNodeLoss: two gateways on a 3-node JetStream cluster
// with R3 streams; one node is killed mid-load. Every event answered 202
// reaches the sink (refusals, 503s while the cluster re-elects, are sent
// again as a sender would); duplicates are counted and reported, not
// failed (at least once).
func TestNATSClusterNodeLoss(t *testing.T) {
	c := natstest.Cluster(t, 3)
	snk := startSink(t)
	// A short lease: a delivery whose ack was lost with the node comes
	// back after it.
	cfg := strings.Replace(natsConfig(strings.Join(c.URLs(), `", "`), snk.URL(), ""), `stream = "fleet"`, "stream = \"fleet\"\nreplicas = 3\nlease = \"3s\"", 1)
	gs := []*natsGateway{startGateway(t, cfg), startGateway(t, cfg)}

	const total = 300
	var (
		mu       sync.Mutex
		accepted = map[string]bool{} // event ids answered 202
		refused  int
		wg       sync.WaitGroup
		killOnce sync.Once
	)
	next := make(chan int, total)
	for i := range total {
		next <- i
	}
	close(next)
	deadline := time.Now().Add(2 * time.Minute)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := gs[w%len(gs)]
			for i := range next {
				if i == total/3 {
					killOnce.Do(func() { c.Node(0).Shutdown() })
				}
				for time.Now().Before(deadline) {
					code, body := postEvent(t, g.ingest+"/hooks/queued", fmt.Sprintf(`{"n":%d}`, i))
					if code == http.StatusAccepted {
						mu.Lock()
						accepted[between(body, `"event_id":"`, `"`)] = true
						mu.Unlock()
						break
					}
					if code != http.StatusServiceUnavailable {
						t.Errorf("event %d: %d %s (a node loss must answer 503, or 202)", i, code, body)
						return
					}
					mu.Lock()
					refused++
					mu.Unlock()
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	if len(accepted) != total {
		t.Fatalf("%d of %d events accepted within the deadline", len(accepted), total)
	}
	// A delivery whose ack was lost with the node comes back after the
	// lease: the failure timeout allows for it, generously.
	var missing []string
	for end := time.Now().Add(90 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		got := map[string]bool{}
		for _, r := range snk.Requests() {
			got[strings.TrimSuffix(r.Header(config.DefaultIDHeader), ".0")] = true
		}
		missing = missing[:0]
		for id := range accepted {
			if !got[id] {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("%d of %d accepted events never reached the sink, e.g. %v", len(missing), len(accepted), missing[:min(3, len(missing))])
		}
	}
	dups := 0
	for _, n := range deliveryIDs(snk.Requests()) {
		dups += n - 1
	}
	t.Logf("node 0 killed after ~%d events: %d accepted, %d answers 503 (sent again), %d delivered, %d duplicates", total/3, len(accepted), refused, snk.Count(), dups)
}

// TestNATSUnreachableAtStart: a config naming NATS servers that cannot be
// reached fails the start with a sentence naming the server and what to
// check; nothing listens.
func TestNATSUnreachableAtStart(t *testing.T) {
	ns := natstest.Start(t)
	url := ns.URL()
	ns.Shutdown()
	listen := testport.Addr(t)
	text := strings.NewReplacer("LISTEN", listen, "ADMIN", testport.Addr(t)).Replace(natsConfig(url, "http://127.0.0.1:1", ""))
	err := startErr(newServer(t, t.TempDir(), text))
	if err == nil || !strings.Contains(err.Error(), "cannot reach "+url) || !strings.Contains(err.Error(), "[queue.nats] urls") {
		t.Fatalf("Start = %v, want it to name %s and what to check", err, url)
	}
	if _, err := http.Get("http://" + listen + "/hooks/queued"); err == nil {
		t.Error("the ingest listener answers although the start failed")
	}
}

// TestNATSQueueFiguresSameOnEveryGateway: the queue figures come from the
// stream, so both gateways show the backlog of a target that is down and
// the dead letters of one that refuses, whichever gateway took the events
// and whichever attempted them.
func TestNATSQueueFiguresSameOnEveryGateway(t *testing.T) {
	ns := natstest.Start(t)
	refusing, err := sink.Start("127.0.0.1:0", sink.Options{Status: 400})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { refusing.Close() })
	// Nothing listens for "down": after one failed attempt each of its
	// deliveries waits an hour for the next.
	cfg := natsConfig(ns.URL(), "http://127.0.0.1:1", `
[[target]]
name = "strict"
url = "`+refusing.URL()+`/strict"

[[target]]
name = "down"
url = "http://`+testport.Addr(t)+`/down"
retry = { initial = "1h", max = "1h", max_attempts = 10 }

[[route]]
name = "refused"
path = "/hooks/refused"
targets = ["strict"]

[[route]]
name = "waiting"
path = "/hooks/waiting"
targets = ["down"]
`)
	a, b := startGateway(t, cfg), startGateway(t, cfg)
	for i := range 6 {
		g := a
		if i%2 == 1 {
			g = b
		}
		for _, path := range []string{"/hooks/waiting", "/hooks/refused"} {
			if code, body := postEvent(t, g.ingest+path, fmt.Sprintf(`{"n":%d}`, i)); code != http.StatusAccepted {
				t.Fatalf("%d %s", code, body)
			}
		}
	}
	var last string
	defer func() {
		if t.Failed() {
			t.Log("last /admin/queue:", last)
		}
	}()
	for _, g := range []*natsGateway{a, b} {
		waitFor(t, "down's backlog of 6 and strict's 6 dead letters on "+g.admin, func() bool {
			code, v := call(t, http.MethodGet, g.admin+"/admin/queue")
			last = fmt.Sprint(code, v)
			ts, _ := v["targets"].(map[string]any)
			down, _ := ts["down"].(map[string]any)
			strict, _ := ts["strict"].(map[string]any)
			return code == http.StatusOK && down != nil && strict != nil &&
				down["depth"] == 6.0 && down["dead"] == 0.0 && strict["depth"] == 0.0 && strict["dead"] == 6.0
		})
	}
}

// TestNATSFIFOAcrossGateways: a fifo target with order_key on a fleet of
// two gateways. Key A's first delivery fails three times; A's later
// deliveries, taken by either gateway, wait for it while B's flow, and
// each key arrives in ingest order with one in flight at a time.
func TestNATSFIFOAcrossGateways(t *testing.T) {
	ns := natstest.Start(t)
	var (
		mu       sync.Mutex
		arrived  = map[string][]int{}
		inFlight = map[string]int{}
		failsA   int
		overlap  bool
	)
	target := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			Customer struct{ UID string } `json:"customer"`
			N        int                  `json:"n"`
		}
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &ev); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		key := ev.Customer.UID
		mu.Lock()
		inFlight[key]++
		overlap = overlap || inFlight[key] > 1
		fail := key == "A" && failsA < 3
		if fail {
			failsA++
		}
		mu.Unlock()
		time.Sleep(5 * time.Millisecond) // long enough for an overlap to show
		mu.Lock()
		inFlight[key]--
		if !fail {
			arrived[key] = append(arrived[key], ev.N)
		}
		mu.Unlock()
		if fail {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go target.Serve(ln)
	t.Cleanup(func() { target.Close() })

	cfg := natsConfig(ns.URL(), "http://127.0.0.1:1", `
[[target]]
name = "ordered"
url = "http://`+ln.Addr().String()+`/events"
order = "fifo"
order_key = "customer.uid"
max_conns = 4
retry = { initial = "200ms", max = "200ms", max_attempts = 10 }

[[route]]
name = "inorder"
path = "/hooks/inorder"
targets = ["ordered"]
`)
	a, b := startGateway(t, cfg), startGateway(t, cfg)
	const perKey = 10
	for i := range perKey {
		for _, key := range []string{"A", "B"} {
			g := a
			if i%2 == 1 {
				g = b
			}
			if code, body := postEvent(t, g.ingest+"/hooks/inorder", fmt.Sprintf(`{"customer":{"uid":%q},"n":%d}`, key, i)); code != http.StatusAccepted {
				t.Fatalf("%d %s", code, body)
			}
		}
	}
	var bDoneBeforeA bool
	for end := time.Now().Add(90 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		na, nb := len(arrived["A"]), len(arrived["B"])
		if nb == perKey && na < perKey {
			bDoneBeforeA = true
		}
		mu.Unlock()
		if na == perKey && nb == perKey {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("after 90 s: A %d of %d, B %d of %d arrived", na, perKey, nb, perKey)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, key := range []string{"A", "B"} {
		for i, n := range arrived[key] {
			if n != i {
				t.Fatalf("key %s arrived in the order %v, want 0..%d", key, arrived[key], perKey-1)
			}
		}
	}
	if overlap {
		t.Error("two deliveries of one key were in flight at once")
	}
	if failsA != 3 {
		t.Errorf("A's head failed %d times, want 3", failsA)
	}
	if !bDoneBeforeA {
		t.Error("B waited behind A's failing head: every B arrived only after A's last")
	}
}
