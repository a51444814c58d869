package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/sink"
	"github.com/hookgate/hookgate/internal/syncbuf"
	"github.com/hookgate/hookgate/internal/testport"
	"github.com/hookgate/hookgate/plugins/plugintest"
)

// opsServer is `hookgate serve` running in-process for the admin, metrics,
// log and reload tests.
type opsServer struct {
	t      *testing.T
	base   string // ingest, http://127.0.0.1:PORT
	admin  string // admin listener
	path   string // the config file
	stderr *syncbuf.Buffer
	stop   func() int
}

// startOps writes cfgText (LISTEN and ADMIN replaced by free loopback
// ports) and serves it with extra serve flags until the test ends.
func startOps(t *testing.T, cfgText string, flags ...string) *opsServer {
	t.Helper()
	dir := t.TempDir()
	listen, adminListen := testport.Addr(t), testport.Addr(t)
	cfgText = strings.NewReplacer("LISTEN", listen, "ADMIN", adminListen).Replace(cfgText)
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	o := &opsServer{t: t, base: "http://" + listen, admin: "http://" + adminListen, path: path, stderr: &syncbuf.Buffer{}}
	exit := make(chan int, 1)
	args := append([]string{"serve", "--config", path}, flags...)
	go func() { exit <- runContext(ctx, args, io.Discard, o.stderr) }()
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(20 * time.Millisecond) { // cold compiles under -race are slow
		select {
		case code := <-exit:
			cancel()
			t.Fatalf("serve exited %d: %s", code, o.stderr.String())
		default:
		}
		if resp, err := http.Get(o.admin + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("serve did not start: %s", o.stderr.String())
		}
	}
	stopped := false
	o.stop = func() int {
		if stopped {
			return 0
		}
		stopped = true
		cancel()
		select {
		case code := <-exit:
			return code
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
			return -1
		}
	}
	t.Cleanup(func() { o.stop() })
	return o
}

// post sends body to the ingest path and returns the status, event id
// and answer.
func (o *opsServer) post(path, body string) (int, string, string) {
	o.t.Helper()
	resp, err := http.Post(o.base+path, "application/json", strings.NewReader(body))
	if err != nil {
		o.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Hookgate-Event-Id"), string(b)
}

// call makes an admin request and decodes the JSON answer into v (when
// not nil); it returns the status.
func (o *opsServer) call(method, path, body string, v any) int {
	o.t.Helper()
	req, err := http.NewRequest(method, o.admin+path, strings.NewReader(body))
	if err != nil {
		o.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		o.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			o.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

// eventually retries f (bounded) until it returns "", then fails with its
// last complaint.
func eventually(t *testing.T, within time.Duration, f func() string) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if last = f(); last == "" {
			return
		}
	}
	t.Fatal(last)
}

func startSink(t *testing.T, opts sink.Options) *sink.Sink {
	t.Helper()
	s, err := sink.Start("127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// opsConfig is the config of the admin and metrics tests: a sync
// passthrough route, a sync route whose filter drops low scores, a sync
// route whose filter config is broken (every call fails), and async
// routes to a healthy and a flaky target.
func opsConfig(t *testing.T, crm, flaky *sink.Sink, extra string) string {
	filter := plugintest.Build(t, "plugins/filter")
	return `
[server]
listen = "LISTEN"
shutdown_timeout = "5s"

[admin]
listen = "ADMIN"

[log]
format = "json"
` + extra + `
[queue]
path = "queue"
sync = "batch"

[[target]]
name = "crm"
url = "` + crm.URL() + `/crm"
headers = { "X-Api-Key" = "secret-key-123" }
id_header = "Idempotency-Key"

[[target]]
name = "flaky"
url = "` + flaky.URL() + `/flaky?token=abc"
retry = { max_attempts = 3, initial = "10ms", max = "20ms", jitter = 0.0 }

[[plugin]]
name = "filter"
wasm = "` + filter + `"
instances = 1

[[route]]
name = "pass"
path = "/hooks/pass"
mode = "sync"
json = true
targets = ["crm"]

[[route]]
name = "filtered"
path = "/hooks/filtered"
mode = "sync"
json = true
targets = ["crm"]
transforms = [{ plugin = "filter", config = { rules = [{ path = "score", op = "gte", value = 9 }] } }]

[[route]]
name = "broken"
path = "/hooks/broken"
mode = "sync"
json = true
targets = ["crm"]
transforms = [{ plugin = "filter", config = { rules = [{ path = "score", op = "lessthan", value = 9 }] } }]

[[route]]
name = "queued"
path = "/hooks/queued"
json = true
targets = ["flaky"]

[[route]]
name = "signed"
path = "/hooks/signed"
mode = "sync"
targets = ["crm"]
verify = { type = "token", query = "token", secrets = ["s3cret-token"] }
dedupe = { header = "Idempotency-Key" }

[[route]]
name = "queued-ok"
path = "/hooks/queued-ok"
json = true
targets = ["crm"]
`
}

type eventJSON struct {
	ID         string `json:"id"`
	Route      string `json:"route"`
	ReceivedAt string `json:"received_at"`
	Status     int    `json:"status"`
	Chain      *struct {
		Dropped     bool   `json:"dropped"`
		DropReason  string `json:"drop_reason"`
		Emitted     int    `json:"emitted"`
		PluginError string `json:"plugin_error"`
	} `json:"chain"`
	Deliveries []struct {
		ID       string `json:"id"`
		Target   string `json:"target"`
		Method   string `json:"method"`
		URL      string `json:"url"`
		Attempts []struct {
			Status  int    `json:"status"`
			Error   string `json:"error"`
			Outcome string `json:"outcome"`
		} `json:"attempts"`
		AttemptsTotal int `json:"attempts_total"`
	} `json:"deliveries"`
}

// TestAdminEvents: GET /admin/events/{id} after a delivery that succeeded,
// one that succeeded after a retry, a drop, and a plugin error; an unknown
// id says where to look instead.
func TestAdminEvents(t *testing.T) {
	crm := startSink(t, sink.Options{})
	flaky := startSink(t, sink.Options{Statuses: []int{503}})
	o := startOps(t, opsConfig(t, crm, flaky, ""))

	code, syncID, _ := o.post("/hooks/pass", `{"n":0}`)
	if code != 200 {
		t.Fatalf("pass answered %d", code)
	}
	code, okID, _ := o.post("/hooks/queued-ok", `{"n":1}`)
	if code != 202 {
		t.Fatalf("queued-ok answered %d", code)
	}
	code, retryID, _ := o.post("/hooks/queued", `{"n":2}`)
	if code != 202 {
		t.Fatalf("queued answered %d", code)
	}
	code, dropID, body := o.post("/hooks/filtered", `{"score":3}`)
	if code != 200 {
		t.Fatalf("filtered answered %d %s", code, body)
	}
	code, brokenID, _ := o.post("/hooks/broken", `{"score":3}`)
	if code != 502 {
		t.Fatalf("broken answered %d", code)
	}

	var ev eventJSON
	eventually(t, 10*time.Second, func() string {
		ev = eventJSON{}
		if st := o.call("GET", "/admin/events/"+okID, "", &ev); st != 200 {
			return "events/okID: status " + http.StatusText(st)
		}
		if len(ev.Deliveries) != 1 || len(ev.Deliveries[0].Attempts) != 1 {
			return "success not recorded yet"
		}
		return ""
	})
	d := ev.Deliveries[0]
	if ev.Route != "queued-ok" || ev.ReceivedAt == "" || ev.Status != 202 || ev.Chain != nil || d.ID != okID+".0" || d.Target != "crm" ||
		d.Method != "POST" || d.URL != crm.URL()+"/crm" || d.Attempts[0].Status != 200 || d.Attempts[0].Outcome != "success" {
		t.Errorf("success event = %+v", ev)
	}

	ev = eventJSON{}
	if st := o.call("GET", "/admin/events/"+syncID, "", &ev); st != 200 || ev.Route != "pass" || ev.Status != 200 || len(ev.Deliveries) != 1 ||
		len(ev.Deliveries[0].Attempts) != 1 || ev.Deliveries[0].Attempts[0].Status != 200 || ev.Deliveries[0].Attempts[0].Outcome != "success" {
		t.Errorf("sync event (%d) = %+v", st, ev)
	}

	eventually(t, 10*time.Second, func() string {
		ev = eventJSON{}
		o.call("GET", "/admin/events/"+retryID, "", &ev)
		if len(ev.Deliveries) != 1 || ev.Deliveries[0].AttemptsTotal != 2 {
			return "retry not recorded yet"
		}
		return ""
	})
	as := ev.Deliveries[0].Attempts
	if ev.Route != "queued" || ev.Deliveries[0].Target != "flaky" || as[0].Status != 503 || as[0].Outcome != "retry" ||
		as[0].Error != "status 503: will retry" || as[1].Status != 200 || as[1].Outcome != "success" {
		t.Errorf("retried event = %+v", ev)
	}
	if u := ev.Deliveries[0].URL; u != flaky.URL()+"/flaky?token=[redacted]" {
		t.Errorf("retried delivery url = %q, want the token redacted", u)
	}

	ev = eventJSON{}
	if st := o.call("GET", "/admin/events/"+dropID, "", &ev); st != 200 || ev.Chain == nil || !ev.Chain.Dropped ||
		ev.Chain.DropReason != "filter: rule 0 not met: score gte 9" || len(ev.Deliveries) != 0 {
		t.Errorf("dropped event (%d) = %+v chain %+v", st, ev, ev.Chain)
	}
	ev = eventJSON{}
	if st := o.call("GET", "/admin/events/"+brokenID, "", &ev); st != 200 || ev.Chain == nil || ev.Chain.PluginError == "" ||
		!strings.Contains(ev.Chain.PluginError, `unknown op "lessthan"`) {
		t.Errorf("plugin error event (%d) = %+v chain %+v", st, ev, ev.Chain)
	}

	var nf struct {
		Error struct{ Code, Message string }
	}
	if st := o.call("GET", "/admin/events/evt_nosuchevent", "", &nf); st != 404 || nf.Error.Code != "not_found" ||
		!strings.Contains(nf.Error.Message, `event "evt_nosuchevent" is not in the recent-events journal (it keeps the last 10000 events since start); dead letters are in /admin/dead`) {
		t.Errorf("unknown event: %d %+v", st, nf)
	}
	if strings.Contains(o.stderr.String(), "secret-key-123") {
		t.Error("the log holds a target secret")
	}
}

// TestAdminTargetsAndPlugins: the live figures of GET /admin/targets and
// GET /admin/plugins.
func TestAdminTargetsAndPlugins(t *testing.T) {
	crm := startSink(t, sink.Options{})
	flaky := startSink(t, sink.Options{Status: 500})
	o := startOps(t, opsConfig(t, crm, flaky, ""))
	o.post("/hooks/filtered", `{"score":3}`)
	o.post("/hooks/filtered", `{"score":10}`)
	o.post("/hooks/broken", `{"score":3}`)
	o.post("/hooks/queued", `{"n":1}`) // 3 attempts, then dead

	type targetsAnswer struct {
		Targets []struct {
			Name    string            `json:"name"`
			URL     string            `json:"url"`
			Headers map[string]string `json:"headers"`
			Queue   *struct {
				Depth   int    `json:"depth"`
				Dead    int    `json:"dead"`
				Breaker string `json:"breaker"`
			} `json:"queue"`
		} `json:"targets"`
	}
	var ta targetsAnswer
	eventually(t, 10*time.Second, func() string {
		ta = targetsAnswer{}
		o.call("GET", "/admin/targets", "", &ta)
		if len(ta.Targets) != 2 || ta.Targets[1].Queue == nil || ta.Targets[1].Queue.Dead != 1 {
			return "the flaky delivery is not dead yet"
		}
		return ""
	})
	crmT, flakyT := ta.Targets[0], ta.Targets[1]
	if crmT.Name != "crm" || crmT.Headers["X-Api-Key"] != "[redacted]" || crmT.Queue.Depth != 0 || crmT.Queue.Breaker != "closed" {
		t.Errorf("crm = %+v queue %+v", crmT, crmT.Queue)
	}
	if flakyT.Name != "flaky" || flakyT.Queue.Depth != 0 || flakyT.Queue.Dead != 1 {
		t.Errorf("flaky = %+v queue %+v", flakyT, flakyT.Queue)
	}

	// GET /admin/queue shows a target's queue with the same fields as
	// GET /admin/targets.
	var tq struct {
		Targets []struct {
			Name  string         `json:"name"`
			Queue map[string]any `json:"queue"`
		} `json:"targets"`
	}
	var qa struct {
		Targets map[string]map[string]any `json:"targets"`
	}
	o.call("GET", "/admin/targets", "", &tq)
	if st := o.call("GET", "/admin/queue", "", &qa); st != 200 || len(qa.Targets) != len(tq.Targets) {
		t.Fatalf("queue: %d %+v", st, qa)
	}
	for _, tg := range tq.Targets {
		q := qa.Targets[tg.Name]
		if len(q) != len(tg.Queue) {
			t.Errorf("%s: /admin/queue %v, /admin/targets %v", tg.Name, q, tg.Queue)
		}
		for k := range tg.Queue {
			if _, ok := q[k]; !ok {
				t.Errorf("%s: /admin/queue lacks %q: %v", tg.Name, k, q)
			}
		}
		if _, ok := q["oldest_pending_seconds"].(float64); !ok {
			t.Errorf("%s: oldest_pending_seconds = %v, want seconds", tg.Name, q["oldest_pending_seconds"])
		}
	}

	// The dead letter's attempts: the first ones retried, the last made it dead.
	var dead struct {
		Dead []struct {
			Attempts []struct {
				Status   int    `json:"status"`
				Error    string `json:"error"`
				Duration string `json:"duration"`
				Outcome  string `json:"outcome"`
			} `json:"attempts"`
		} `json:"dead"`
	}
	if st := o.call("GET", "/admin/dead?target=flaky", "", &dead); st != 200 || len(dead.Dead) != 1 || len(dead.Dead[0].Attempts) != 3 {
		t.Fatalf("dead: %d %+v", st, dead)
	}
	for i, a := range dead.Dead[0].Attempts {
		want := "retry"
		if i == 2 {
			want = "dead"
		}
		if _, err := time.ParseDuration(a.Duration); err != nil || a.Status != 500 || a.Outcome != want || a.Error == "" {
			t.Errorf("dead attempt %d = %+v, want outcome %s", i, a, want)
		}
	}

	var pa struct {
		Plugins []struct {
			Name      string           `json:"name"`
			Instances int              `json:"instances"`
			Busy      int              `json:"busy"`
			Idle      int              `json:"idle"`
			Calls     int64            `json:"calls"`
			Errors    map[string]int64 `json:"errors"`
		} `json:"plugins"`
	}
	if st := o.call("GET", "/admin/plugins", "", &pa); st != 200 || len(pa.Plugins) != 1 {
		t.Fatalf("plugins: %d %+v", st, pa)
	}
	p := pa.Plugins[0]
	if p.Name != "filter" || p.Instances != 1 || p.Busy != 0 || p.Idle != 1 || p.Calls != 3 || p.Errors["failed"] != 1 || len(p.Errors) != 1 {
		t.Errorf("filter = %+v", p)
	}
}

// TestAdminRouteTest: POST /admin/routes/{name}/test answers what `hookgate
// try` prints; with send=true the deliveries really reach the target
// (with its headers and id header) and its answer comes back. Nothing goes
// through the queue or the journal's live traffic, and a drop sends
// nothing.
func TestAdminRouteTest(t *testing.T) {
	crm := startSink(t, sink.Options{Status: 201, Body: `{"ticket":7}`})
	flaky := startSink(t, sink.Options{})
	o := startOps(t, opsConfig(t, crm, flaky, ""))

	var dry struct {
		EventID    string        `json:"event_id"`
		Deliveries []tryDelivery `json:"deliveries"`
		Dropped    *string       `json:"dropped"`
	}
	if st := o.call("POST", "/admin/routes/filtered/test", `{"score":10}`, &dry); st != 200 {
		t.Fatalf("dry run answered %d", st)
	}
	want := tryDelivery{Target: "crm", Method: "POST", URL: crm.URL() + "/crm", Body: `{"score":10}`, Delay: "0s",
		Headers: map[string]string{"Content-Type": "application/json", "User-Agent": "Go-http-client/1.1", "X-Api-Key": "[redacted]",
			"Idempotency-Key": dry.EventID + ".0"}}
	if len(dry.Deliveries) != 1 || dry.Dropped != nil || !equalDelivery(dry.Deliveries[0], want) {
		t.Errorf("dry run = %+v, want %+v", dry, want)
	}
	if crm.Count() != 0 {
		t.Errorf("a dry run sent %d requests", crm.Count())
	}

	var dropped struct {
		Dropped *string `json:"dropped"`
	}
	if st := o.call("POST", "/admin/routes/filtered/test?send=true", `{"score":2}`, &dropped); st != 200 || dropped.Dropped == nil ||
		*dropped.Dropped != "filter: rule 0 not met: score gte 9" {
		t.Errorf("drop: %d %+v", st, dropped)
	}

	var sent struct {
		EventID    string `json:"event_id"`
		Deliveries []struct {
			Target string `json:"target"`
			Sent   struct {
				Status      int    `json:"status"`
				ContentType string `json:"content_type"`
				Body        string `json:"body"`
				Error       string `json:"error"`
			} `json:"sent"`
		} `json:"deliveries"`
	}
	if st := o.call("POST", "/admin/routes/pass/test?send=true&campaign=c1", `{"score":10}`, &sent); st != 200 || len(sent.Deliveries) != 1 {
		t.Fatalf("send: %d %+v", st, sent)
	}
	s0 := sent.Deliveries[0].Sent
	if sent.Deliveries[0].Target != "crm" || s0.Status != 201 || s0.ContentType != "application/json" || s0.Body != `{"ticket":7}` || s0.Error != "" {
		t.Errorf("send answer = %+v", sent.Deliveries[0])
	}
	reqs, err := crm.Wait(1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r := reqs[0]
	if r.Body != `{"score":10}` || r.Header("X-Api-Key") != "secret-key-123" || r.Header("Idempotency-Key") != sent.EventID+".0" ||
		r.Header("Authorization") != "" {
		t.Errorf("the target got %+v", r)
	}

	var st404 struct {
		Error struct{ Code, Message string }
	}
	if st := o.call("POST", "/admin/routes/nope/test", `{}`, &st404); st != 404 || !strings.Contains(st404.Error.Message, "the routes are: pass, filtered, broken, queued, signed, queued-ok") {
		t.Errorf("unknown route: %d %+v", st, st404)
	}
	if st := o.call("POST", "/admin/routes/pass/test", `not json`, &st404); st != 400 || st404.Error.Code != "invalid_json" {
		t.Errorf("bad JSON: %d %+v", st, st404)
	}
	if st := o.call("POST", "/admin/routes/broken/test", `{"score":1}`, &st404); st != 502 || st404.Error.Code != "plugin_failed" {
		t.Errorf("plugin error: %d %+v", st, st404)
	}
	if flaky.Count() != 0 {
		t.Errorf("the flaky target got %d requests", flaky.Count())
	}
}

func equalDelivery(a, b tryDelivery) bool {
	if a.Target != b.Target || a.Method != b.Method || a.URL != b.URL || a.Body != b.Body || a.Delay != b.Delay || len(a.Headers) != len(b.Headers) {
		return false
	}
	for k, v := range b.Headers {
		if a.Headers[k] != v {
			return false
		}
	}
	return true
}
