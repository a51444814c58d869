package main

import (
	"bytes"
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

// startServe runs `hookgate serve` on cfgText (with LISTEN, ADMIN and SINK
// replaced) and returns the ingest base URL and a stop function returning
// the exit code.
func startServe(t *testing.T, cfgText string, s *sink.Sink) (base string, stop func() int, stderr *syncbuf.Buffer) {
	t.Helper()
	dir := t.TempDir()
	listen, adminListen := testport.Addr(t), testport.Addr(t)
	cfgText = strings.NewReplacer("LISTEN", listen, "ADMIN", adminListen, "SINK", s.URL()).Replace(cfgText)
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stderr = &syncbuf.Buffer{}
	exit := make(chan int, 1)
	go func() { exit <- runContext(ctx, []string{"serve", "--config", path}, io.Discard, stderr) }()
	for deadline := time.Now().Add(5 * time.Minute); len(listenRE.FindAllString(stderr.String(), -1)) < 2; time.Sleep(10 * time.Millisecond) {
		select {
		case code := <-exit:
			cancel()
			t.Fatalf("serve exited %d: %s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("serve did not start: %s", stderr.String())
		}
	}
	stop = func() int {
		cancel()
		select {
		case code := <-exit:
			return code
		case <-time.After(30 * time.Second):
			t.Fatal("serve did not stop")
			return -1
		}
	}
	return "http://" + listen, stop, stderr
}

// TestServeAsyncAndPlugins: an async route answers 202 and its delivery
// reaches the sink through the durable queue; a sync route with the
// howxm-nps plugin forwards the plugin's ticket, not the raw payload.
func TestServeAsyncAndPlugins(t *testing.T) {
	nps := plugintest.Build(t, "plugins/howxm-nps")
	s, err := sink.Start("127.0.0.1:0", sink.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base, stop, stderr := startServe(t, `
[server]
listen = "LISTEN"
shutdown_timeout = "5s"

[admin]
listen = "ADMIN"

[queue]
path = "queue"
sync = "batch"

[transforms]
cache_dir = "cache"

[[target]]
name = "crm"
url = "SINK/crm/tickets"
id_header = "Idempotency-Key"

[[plugin]]
name = "howxm-nps"
wasm = "`+nps+`"

[[route]]
name = "queued"
path = "/hooks/queued"
targets = ["crm"]

[[route]]
name = "nps"
path = "/hooks/howxm"
mode = "sync"
json = true
targets = ["crm"]
transforms = [{ plugin = "howxm-nps", config = { max_score = 10, target = "crm" } }]
`, s)

	resp, err := http.Post(base+"/hooks/queued", "application/json", strings.NewReader(`{"n":1}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	id := resp.Header.Get("Hookgate-Event-Id")
	if resp.StatusCode != 202 || string(body) != `{"event_id":"`+id+`"}` {
		t.Fatalf("async answer %d %s", resp.StatusCode, body)
	}
	reqs, err := s.Wait(1, 10*time.Second)
	if err != nil {
		t.Fatalf("the queued delivery never arrived: %v\n%s", err, stderr.String())
	}
	if reqs[0].Body != `{"n":1}` || reqs[0].Header("Idempotency-Key") != id+".0" {
		t.Errorf("sink got %q with key %q", reqs[0].Body, reqs[0].Header("Idempotency-Key"))
	}

	fixture, err := os.ReadFile("../../testdata/howxm_entry_submitted.json")
	if err != nil {
		t.Fatal(err)
	}
	resp, err = http.Post(base+"/hooks/howxm", "application/json", bytes.NewReader(fixture))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("plugin route answered %d", resp.StatusCode)
	}
	reqs, err = s.Wait(2, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var ticket struct {
		Source string `json:"source"`
		Score  int    `json:"score"`
	}
	if err := json.Unmarshal([]byte(reqs[1].Body), &ticket); err != nil || ticket.Source != "howxm" || ticket.Score != 10 {
		t.Errorf("the target got %s, want the plugin's ticket", reqs[1].Body)
	}
	if code := stop(); code != 0 {
		t.Errorf("serve exited %d: %s", code, stderr.String())
	}
}
