package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/queue"
	"github.com/hookgate/hookgate/internal/sink"
)

// replayConfig is a config whose queue lives in dir; nothing listens on
// its addresses (offline replay never starts the gateway).
func replayConfig(t *testing.T, dir, admin string) string {
	t.Helper()
	path := filepath.Join(dir, "config.toml")
	cfg := `
[server]
listen = "127.0.0.1:1"

[admin]
listen = "` + admin + `"

[queue]
path = "queue"

[[target]]
name = "crm"
url = "http://127.0.0.1:1/crm"

[[target]]
name = "sms"
url = "http://127.0.0.1:1/sms"

[[route]]
name = "howxm"
path = "/hooks/howxm"
targets = ["crm", "sms"]

[[route]]
name = "smartsupp"
path = "/hooks/smartsupp"
targets = ["crm"]
`
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// fillDead puts one dead letter per id into the queue at path; each id is
// "target/route/n" and becomes delivery id "target-route-n.0".
func fillDead(t *testing.T, path string, ids ...string) {
	t.Helper()
	store, err := queue.Open(queue.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	byTarget := map[string]int{}
	for _, id := range ids {
		parts := strings.Split(id, "/")
		ev := strings.Join(parts, "-")
		d := delivery.Delivery{ID: []byte(ev + ".0"), EventID: []byte(ev), Target: parts[0], Route: parts[1],
			Method: []byte("POST"), Body: []byte(`{"n":"` + ev + `"}`)}
		if err := store.Enqueue([]delivery.Delivery{d}); err != nil {
			t.Fatal(err)
		}
		byTarget[parts[0]]++
	}
	for target, n := range byTarget {
		leased, err := store.Claim(nil, target, time.Now().Add(time.Hour), n, time.Minute)
		if err != nil || len(leased) != n {
			t.Fatalf("claim %s: %d of %d: %v", target, len(leased), n, err)
		}
		for _, l := range leased {
			if err := store.Dead(l.Ref, delivery.Attempt{At: time.Now(), Status: 400, Error: "status 400"}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// deadAndDepth reopens the queue and reports dead letters and pending
// deliveries per target.
func deadAndDepth(t *testing.T, path string) map[string][2]int {
	t.Helper()
	store, err := queue.Open(queue.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	out := map[string][2]int{}
	for name, st := range store.Stats() {
		out[name] = [2]int{st.Dead, st.Depth}
	}
	return out
}

func TestReplayFlags(t *testing.T) {
	dir := t.TempDir()
	cfg := replayConfig(t, dir, "127.0.0.1:2")
	tests := []struct {
		name      string
		args      []string
		code      int
		stderrHas string
	}{
		{name: "nothing selected", args: []string{"--config", cfg}, code: 2, stderrHas: "say which dead letters to replay: --id ID (one), --target NAME, --route NAME, or --all"},
		{name: "id and all", args: []string{"--config", cfg, "--id", "x.0", "--all"}, code: 2, stderrHas: "--id replays one dead letter"},
		{name: "id and target", args: []string{"--config", cfg, "--id", "x.0", "--target", "crm"}, code: 2, stderrHas: "--id replays one dead letter"},
		{name: "all and route", args: []string{"--config", cfg, "--all", "--route", "howxm"}, code: 2, stderrHas: "--all replays every dead letter"},
		{name: "missing config", args: []string{"--config", filepath.Join(dir, "none.toml"), "--all"}, code: 1, stderrHas: "cannot read the config file"},
		{name: "no queue yet", args: []string{"--config", cfg, "--all"}, code: 1, stderrHas: "there is no queue at " + filepath.Join(dir, "queue")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runArgs(append([]string{"replay"}, tc.args...)...)
			if code != tc.code || !strings.Contains(errOut, tc.stderrHas) || out != "" {
				t.Errorf("exit %d stdout %q stderr %q; want exit %d and stderr with %q", code, out, errOut, tc.code, tc.stderrHas)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "queue")); !os.IsNotExist(err) {
		t.Errorf("replay created the queue directory: %v", err)
	}
}

// TestReplayOffline replays straight in the queue directory, as with the
// gateway stopped: one by id, then by target, by route and all, checking
// after each step what is dead and what is pending again.
func TestReplayOffline(t *testing.T) {
	dir := t.TempDir()
	cfg := replayConfig(t, dir, "127.0.0.1:2")
	qpath := filepath.Join(dir, "queue")
	fillDead(t, qpath, "crm/howxm/1", "crm/howxm/2", "crm/smartsupp/3", "sms/howxm/4", "sms/howxm/5", "sms/howxm/6")

	steps := []struct {
		name      string
		args      []string
		code      int
		stdout    string
		stderrHas string
		want      map[string][2]int // target: dead, pending
	}{
		{name: "by id", args: []string{"--id", "crm-howxm-2.0"}, stdout: "replayed dead letter crm-howxm-2.0; it goes out when the gateway starts\n",
			want: map[string][2]int{"crm": {2, 1}, "sms": {3, 0}}},
		{name: "same id again", args: []string{"--id", "crm-howxm-2.0"}, code: 1, stderrHas: `no dead letter has delivery id "crm-howxm-2.0"`,
			want: map[string][2]int{"crm": {2, 1}, "sms": {3, 0}}},
		{name: "by target", args: []string{"--target", "sms"}, stdout: "replayed 3 dead letters for target \"sms\"; they go out when the gateway starts\n", stderrHas: "3/3 replayed\n",
			want: map[string][2]int{"crm": {2, 1}, "sms": {0, 3}}},
		{name: "unknown target", args: []string{"--target", "smss"}, stdout: "nothing to replay: no dead letters for target \"smss\"; the config has no target \"smss\" (targets: crm, sms)\n",
			want: map[string][2]int{"crm": {2, 1}, "sms": {0, 3}}},
		{name: "by route and target", args: []string{"--target", "crm", "--route", "smartsupp"}, stdout: "replayed 1 dead letters for target \"crm\", route \"smartsupp\"; they go out when the gateway starts\n", stderrHas: "1/1 replayed\n",
			want: map[string][2]int{"crm": {1, 2}, "sms": {0, 3}}},
		{name: "all", args: []string{"--all"}, stdout: "replayed 1 dead letters for every target and route; they go out when the gateway starts\n", stderrHas: "1/1 replayed\n",
			want: map[string][2]int{"crm": {0, 3}, "sms": {0, 3}}},
		{name: "all again", args: []string{"--all"}, stdout: "nothing to replay: no dead letters for every target and route\n",
			want: map[string][2]int{"crm": {0, 3}, "sms": {0, 3}}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			code, out, errOut := runArgs(append([]string{"replay", "--config", cfg}, st.args...)...)
			if code != st.code || out != st.stdout || !strings.Contains(errOut, st.stderrHas) {
				t.Fatalf("exit %d stdout %q stderr %q;\nwant exit %d stdout %q stderr with %q", code, out, errOut, st.code, st.stdout, st.stderrHas)
			}
			got := deadAndDepth(t, qpath)
			for target, want := range st.want {
				if got[target] != want {
					t.Errorf("%s: dead, pending = %v, want %v", target, got[target], want)
				}
			}
		})
	}
}

// TestReplayLocked: a queue held by a running gateway sends replay to the
// admin API; when there is none to reach, the message says what to do.
func TestReplayLocked(t *testing.T) {
	tests := []struct {
		name, admin string
		args        []string
		stderrHas   []string
	}{
		{name: "admin listener off", admin: "", args: []string{"--all"},
			stderrHas: []string{"has no admin.listen, so there is no admin API to replay through; stop the gateway and run this again, or set admin.listen and restart it"}},
		{name: "nothing listening", admin: "127.0.0.1:2", args: []string{"--target", "crm"},
			stderrHas: []string{"replaying through its admin API", "cannot reach the admin API at http://127.0.0.1:2", "pass --admin URL"}},
		{name: "empty token variable", admin: "127.0.0.1:2", args: []string{"--all", "--token-env", "HOOKGATE_TEST_UNSET_TOKEN"},
			stderrHas: []string{"--token-env HOOKGATE_TEST_UNSET_TOKEN: the variable is empty or not set"}},
	}
	t.Setenv("HOOKGATE_TEST_UNSET_TOKEN", "")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := replayConfig(t, dir, tc.admin)
			store, err := queue.Open(queue.Options{Path: filepath.Join(dir, "queue")})
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			code, out, errOut := runArgs(append([]string{"replay", "--config", cfg}, tc.args...)...)
			if code != 1 || out != "" {
				t.Errorf("exit %d stdout %q, want 1 and nothing", code, out)
			}
			for _, s := range tc.stderrHas {
				if !strings.Contains(errOut, s) {
					t.Errorf("stderr %q lacks %q", errOut, s)
				}
			}
		})
	}
}

func TestAdminBase(t *testing.T) {
	tests := []struct{ name, listen, want string }{
		{name: "loopback", listen: "127.0.0.1:8081", want: "http://127.0.0.1:8081"},
		{name: "no host", listen: ":8081", want: "http://127.0.0.1:8081"},
		{name: "any v4", listen: "0.0.0.0:8081", want: "http://127.0.0.1:8081"},
		{name: "any v6", listen: "[::]:8081", want: "http://[::1]:8081"},
		{name: "named", listen: "admin.internal:8081", want: "http://admin.internal:8081"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := adminBase(tc.listen); err != nil || got != tc.want {
				t.Errorf("adminBase(%q) = %q, %v; want %q", tc.listen, got, err, tc.want)
			}
		})
	}
}

func TestProgressBar(t *testing.T) {
	tests := []struct {
		name        string
		done, total int
		want        string
	}{
		{name: "none", done: 0, total: 1024, want: "[" + strings.Repeat(".", 30) + "]"},
		{name: "half", done: 512, total: 1024, want: "[" + strings.Repeat("#", 15) + strings.Repeat(".", 15) + "]"},
		{name: "all", done: 1024, total: 1024, want: "[" + strings.Repeat("#", 30) + "]"},
		{name: "more than counted", done: 7, total: 5, want: "[" + strings.Repeat("#", 30) + "]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := bar(tc.done, tc.total); got != tc.want {
				t.Errorf("bar(%d, %d) = %q, want %q", tc.done, tc.total, got, tc.want)
			}
		})
	}
}

// TestReplayOnline: with the gateway running (it holds the queue), replay
// goes through its admin API. The sink refuses the first four deliveries
// with 400, so they go straight to the dead letters; one is replayed by
// id and the rest by target, and each then reaches the sink exactly once
// more, answered 200.
func TestReplayOnline(t *testing.T) {
	const n = 4
	t.Setenv("HOOKGATE_TEST_ATOKEN", "adm-secret")
	t.Setenv("HOOKGATE_TEST_WRONG", "not-it")
	s, err := sink.Start("127.0.0.1:0", sink.Options{Statuses: []int{400, 400, 400, 400}})
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
token = "${env:HOOKGATE_TEST_ATOKEN}"

[queue]
path = "queue"

[[target]]
name = "crm"
url = "SINK/crm"
id_header = "Idempotency-Key"
retry = { initial = "10ms", max = "50ms" }

[[route]]
name = "hooks"
path = "/hooks/in"
targets = ["crm"]
`, s)
	cfgPath := filepath.Join(filepath.Dir(configPathOf(t, stderr.String())), "config.toml")

	var ids []string
	for i := range n {
		resp, err := http.Post(base+"/hooks/in", "application/json", strings.NewReader(fmt.Sprintf(`{"n":%d}`, i)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 202 {
			t.Fatalf("event %d answered %d", i, resp.StatusCode)
		}
		ids = append(ids, resp.Header.Get("Hookgate-Event-Id")+".0")
	}
	adminBase := adminURLOf(t, stderr.String())
	waitQueue(t, adminBase, "adm-secret", func(q targetQueueJSON) bool { return q.Dead == n && q.Depth == 0 })

	// A wrong token is refused with a sentence saying what to do.
	code, out, errOut := runArgs("replay", "--config", cfgPath, "--target", "crm", "--token-env", "HOOKGATE_TEST_WRONG")
	if code != 1 || out != "" || !strings.Contains(errOut, "refused the admin token") || !strings.Contains(errOut, "--token-env NAME") {
		t.Fatalf("wrong token: exit %d stdout %q stderr %q", code, out, errOut)
	}

	code, out, errOut = runArgs("replay", "--config", cfgPath, "--id", ids[2])
	if code != 0 || out != "replayed dead letter "+ids[2]+"; the gateway is sending it\n" || !strings.Contains(errOut, "replaying through its admin API") {
		t.Fatalf("by id: exit %d stdout %q stderr %q", code, out, errOut)
	}
	code, _, errOut = runArgs("replay", "--config", cfgPath, "--id", ids[2])
	if code != 1 || !strings.Contains(errOut, `no dead letter has delivery id "`+ids[2]+`"`) {
		t.Fatalf("same id again: exit %d stderr %q", code, errOut)
	}
	code, out, errOut = runArgs("replay", "--config", cfgPath, "--target", "crm")
	if code != 0 || out != "replayed 3 dead letters for target \"crm\"; the gateway is sending them\n" || !strings.Contains(errOut, "3/3 replayed\n") {
		t.Fatalf("by target: exit %d stdout %q stderr %q", code, out, errOut)
	}
	waitQueue(t, adminBase, "adm-secret", func(q targetQueueJSON) bool { return q.Dead == 0 && q.Depth == 0 })

	reqs := s.Requests()
	if len(reqs) != 2*n {
		t.Fatalf("the sink got %d requests, want %d (4 refused, 4 replayed)", len(reqs), 2*n)
	}
	seen := map[string]int{}
	for _, r := range reqs[n:] {
		seen[r.Header("Idempotency-Key")]++
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("delivery %s arrived %d times after the replay, want 1 (all: %v)", id, seen[id], seen)
		}
	}
	if code := stop(); code != 0 {
		t.Errorf("serve exited %d: %s", code, stderr.String())
	}
}

type targetQueueJSON struct {
	Depth int `json:"depth"`
	Dead  int `json:"dead"`
}

// waitQueue polls GET /admin/queue until ok holds for target crm (a
// delivery is dead-lettered or acked only after the sink answered, so the
// sink's count alone cannot tell).
func waitQueue(t *testing.T, base, token string, ok func(targetQueueJSON) bool) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		req, _ := http.NewRequest("GET", base+"/admin/queue", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		last = string(body)
		var q struct {
			Targets map[string]targetQueueJSON `json:"targets"`
		}
		if err := json.Unmarshal(body, &q); err != nil {
			t.Fatalf("GET /admin/queue: %d %s", resp.StatusCode, body)
		}
		if ok(q.Targets["crm"]) {
			return
		}
	}
	t.Fatalf("the queue never reached the expected state; last /admin/queue: %s", last)
}

// configPathOf and adminURLOf read what serve logged at start.
func configPathOf(t *testing.T, log string) string {
	t.Helper()
	for _, line := range strings.Split(log, "\n") {
		if i := strings.Index(line, " config="); i >= 0 && strings.Contains(line, "listener=ingest") {
			return strings.Fields(line[i+len(" config="):])[0]
		}
	}
	t.Fatalf("serve logged no config path: %s", log)
	return ""
}

func adminURLOf(t *testing.T, log string) string {
	t.Helper()
	for _, m := range listenRE.FindAllStringSubmatch(log, -1) {
		if m[1] == "admin" {
			return "http://" + m[2]
		}
	}
	t.Fatalf("serve logged no admin address: %s", log)
	return ""
}
