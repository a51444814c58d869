package server

import (
	"github.com/hookgate/hookgate/internal/syncbuf"
	"net/http"
	"strings"
	"testing"
)

// TestRecentEvents: GET /admin/events lists the journal's events oldest
// first; ?after=ID lists only those after it, so a reader that passes the
// last id it saw follows new events (the console's live tail does).
func TestRecentEvents(t *testing.T) {
	s := startSink(t)
	_, admin, ingest := startLogged(t, asyncConfig(s.URL()), &syncbuf.Buffer{})
	var ids []string
	for range 3 {
		resp, err := http.Post(ingest+"/hooks/queued", "application/json", strings.NewReader(`{"a":1}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		ids = append(ids, resp.Header.Get("Hookgate-Event-Id"))
	}
	listed := func(query string) []string {
		t.Helper()
		code, v := call(t, "GET", admin+"/admin/events"+query)
		if code != 200 {
			t.Fatalf("GET /admin/events%s: %d %v", query, code, v)
		}
		var out []string
		for _, e := range v["events"].([]any) {
			ev := e.(map[string]any)
			if ev["route"] != "queued" || ev["status"] != float64(202) {
				t.Errorf("event %v", ev)
			}
			out = append(out, ev["id"].(string))
		}
		return out
	}
	if got := listed(""); strings.Join(got, " ") != strings.Join(ids, " ") {
		t.Errorf("all: %v, want %v", got, ids)
	}
	if got := listed("?after=" + ids[0]); strings.Join(got, " ") != strings.Join(ids[1:], " ") {
		t.Errorf("after the first: %v, want %v", got, ids[1:])
	}
	if got := listed("?limit=1"); len(got) != 1 || got[0] != ids[2] {
		t.Errorf("limit=1: %v, want the newest, %s", got, ids[2])
	}
	if got := listed("?after=" + ids[2]); len(got) != 0 {
		t.Errorf("after the newest: %v", got)
	}
	if code, v := call(t, "GET", admin+"/admin/events?limit=0"); code != 400 || v["error"].(map[string]any)["code"] != "bad_limit" {
		t.Errorf("limit=0: %d %v", code, v)
	}
}
