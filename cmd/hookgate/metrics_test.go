package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/hookgate/hookgate/internal/sink"
)

// scrape reads GET /metrics and returns every sample as
// `name{label="value",...}` (labels sorted) -> value; a histogram gives
// its _count and _sum.
func (o *opsServer) scrape() map[string]float64 {
	o.t.Helper()
	resp, err := http.Get(o.admin + "/metrics")
	if err != nil {
		o.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		o.t.Fatalf("/metrics answered %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		o.t.Fatalf("parsing the exposition: %v", err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			key := func(suffix string) string { return name + suffix + labelString(m.GetLabel()) }
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key("")] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key("")] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key("_count")] = float64(m.GetHistogram().GetSampleCount())
				out[key("_sum")] = m.GetHistogram().GetSampleSum()
			case dto.MetricType_UNTYPED:
				out[key("")] = m.GetUntyped().GetValue()
			}
		}
	}
	return out
}

func labelString(ls []*dto.LabelPair) string {
	if len(ls) == 0 {
		return ""
	}
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = fmt.Sprintf("%s=%q", l.GetName(), l.GetValue())
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ",") + "}"
}

// TestMetricsAfterKnownTraffic runs serve, sends known traffic, scrapes
// /metrics and checks the exact values: 3 sync requests forwarded, 1 to no
// route, 1 with a bad JSON body, 1 dropped by a plugin, 1 plugin failure,
// 1 async event delivered after one retry, 1 refused by verify, and 1
// duplicate.
func TestMetricsAfterKnownTraffic(t *testing.T) {
	crm := startSink(t, sink.Options{})
	flaky := startSink(t, sink.Options{Statuses: []int{503}})
	o := startOps(t, opsConfig(t, crm, flaky, ""))

	for i := range 3 {
		if code, _, body := o.post("/hooks/pass", fmt.Sprintf(`{"n":%d}`, i)); code != 200 {
			t.Fatalf("pass answered %d %s", code, body)
		}
	}
	want := []struct {
		path, body string
		code       int
	}{
		{"/hooks/nope", `{}`, 404},
		{"/hooks/pass", `not json`, 400},
		{"/hooks/filtered", `{"score":3}`, 200},
		{"/hooks/broken", `{"score":3}`, 502},
		{"/hooks/queued", `{"n":1}`, 202},
		{"/hooks/signed?token=wrong", `{}`, 401},
	}
	for _, w := range want {
		if code, _, body := o.post(w.path, w.body); code != w.code {
			t.Fatalf("%s answered %d %s, want %d", w.path, code, body, w.code)
		}
	}
	// The same event twice: the second is a duplicate, answered 200 with the first event id.
	for range 2 {
		req, _ := http.NewRequest("POST", o.base+"/hooks/signed?token=s3cret-token", strings.NewReader(`{}`))
		req.Header.Set("Idempotency-Key", "k1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("signed answered %d", resp.StatusCode)
		}
	}
	if _, err := flaky.Wait(2, 10*time.Second); err != nil {
		t.Fatalf("the retried delivery did not arrive: %v", err)
	}

	var m map[string]float64
	eventually(t, 10*time.Second, func() string {
		m = o.scrape()
		if m[`hookgate_target_attempts_total{class="2xx",outcome="success",target="flaky"}`] != 1 {
			return "the flaky success is not counted yet"
		}
		if m[`hookgate_target_queue_depth{target="flaky"}`] != 0 {
			return "the flaky delivery is not acked yet"
		}
		return ""
	})
	exact := map[string]float64{
		// dispatch
		`hookgate_target_attempts_total{class="5xx",outcome="retry",target="flaky"}`:   1,
		`hookgate_target_attempts_total{class="2xx",outcome="success",target="flaky"}`: 1,
		`hookgate_target_attempt_duration_seconds_count{target="flaky"}`:               2,
		`hookgate_target_queue_depth{target="flaky"}`:                                  0,
		`hookgate_target_queue_depth{target="crm"}`:                                    0,
		`hookgate_target_dead_letters{target="flaky"}`:                                 0,
		`hookgate_target_breaker_state{target="flaky"}`:                                0,
		`hookgate_target_oldest_pending_seconds{target="flaky"}`:                       0,
		// transforms: the drop and the failure
		`hookgate_plugin_calls_total{plugin="filter"}`:                             2,
		`hookgate_plugin_errors_total{kind="failed",plugin="filter"}`:              1,
		`hookgate_plugin_errors_total{kind="timeout",plugin="filter"}`:             0,
		`hookgate_plugin_call_duration_seconds_count{plugin="filter"}`:             2,
		`hookgate_plugin_instances{plugin="filter",state="busy"}`:                  0,
		`hookgate_plugin_instances{plugin="filter",state="idle"}`:                  1,
		`hookgate_build_info{goversion="` + runtime.Version() + `",version="dev"}`: 1,
		// ingest
		`hookgate_route_requests_total{route="pass"}`:                                4,
		`hookgate_route_requests_total{route=""}`:                                    1,
		`hookgate_route_requests_total{route="filtered"}`:                            1,
		`hookgate_route_requests_total{route="broken"}`:                              1,
		`hookgate_route_requests_total{route="queued"}`:                              1,
		`hookgate_route_requests_total{route="signed"}`:                              3,
		`hookgate_route_rejected_total{reason="not_found",route=""}`:                 1,
		`hookgate_route_rejected_total{reason="bad_json",route="pass"}`:              1,
		`hookgate_route_rejected_total{reason="unauthorized",route="pass"}`:          0,
		`hookgate_route_rejected_total{reason="plugin_error",route="broken"}`:        1,
		`hookgate_route_rejected_total{reason="unauthorized",route="signed"}`:        1,
		`hookgate_route_duplicates_total{route="signed"}`:                            1,
		`hookgate_route_duplicates_total{route="pass"}`:                              0,
		`hookgate_route_dropped_total{route="filtered"}`:                             1,
		`hookgate_route_dropped_total{route="pass"}`:                                 0,
		`hookgate_route_request_duration_seconds_count{route="pass"}`:                4,
		`hookgate_target_attempts_total{class="2xx",outcome="success",target="crm"}`: 4, // 3 passthrough + 1 signed
	}
	for k, v := range exact {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	for _, k := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := m[k]; !ok {
			t.Errorf("%s: missing (runtime and process collectors)", k)
		}
	}
	for k := range m {
		if strings.Contains(k, "evt_") || strings.Contains(k, "127.0.0.1") {
			t.Errorf("a label holds an event id or a URL: %s", k)
		}
	}
}

// TestLogLines captures serve's JSON log over a few requests: one warning
// per plugin error (plugin, kind, event, route) and per failed delivery
// attempt (target, delivery id, attempt, status), none for requests that
// succeeded, one per refusal (route, code, event, remote ip), no secret
// anywhere; with [log] access = true, one access line per request; with
// level = "warn", no info line.
func TestLogLines(t *testing.T) {
	tests := []struct {
		name   string
		access bool
		level  string
	}{
		{name: "default", access: false},
		{name: "access log", access: true},
		{name: "level warn", level: "warn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			crm := startSink(t, sink.Options{})
			flaky := startSink(t, sink.Options{Statuses: []int{503}})
			extra := ""
			if tt.access {
				extra += "access = true\n"
			}
			if tt.level != "" {
				extra += "level = \"" + tt.level + "\"\n"
			}
			o := startOps(t, opsConfig(t, crm, flaky, extra))
			o.post("/hooks/pass", `{"n":1}`)
			o.post("/hooks/pass", `{"n":2}`)
			_, notFoundID, _ := o.post("/hooks/nope", `{}`)
			_, badID, _ := o.post("/hooks/pass", `not json`)
			_, unauthID, _ := o.post("/hooks/signed?token=wrong-but-secret-looking", `{}`)
			_, brokenID, _ := o.post("/hooks/broken", `{"score":3}`)
			_, queuedID, _ := o.post("/hooks/queued", `{"n":3}`)
			if _, err := flaky.Wait(2, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			if code := o.stop(); code != 0 {
				t.Fatalf("serve exited %d", code)
			}
			lines := jsonLines(t, o.stderr.String())

			pluginErr := only(t, lines, "plugin error")
			wantFields(t, pluginErr, map[string]any{"level": "WARN", "plugin": "filter", "kind": "failed", "event_id": brokenID, "route": "broken"})
			if e, _ := pluginErr["error"].(string); !strings.Contains(e, `unknown op "lessthan"`) {
				t.Errorf("plugin error line says %q", e)
			}
			failed := only(t, lines, "dispatch: attempt failed; will retry")
			wantFields(t, failed, map[string]any{"level": "WARN", "target": "flaky", "delivery_id": queuedID + ".0", "route": "queued",
				"attempt": float64(1), "status": float64(503), "error": "status 503: will retry"})

			var refused []map[string]any
			for _, l := range lines {
				if l["msg"] == "ingest: refused" {
					refused = append(refused, l)
				}
			}
			if len(refused) != 4 {
				t.Fatalf("%d refusal lines, want 4 (404, bad JSON, 401, plugin error): %v", len(refused), refused)
			}
			wantFields(t, refused[0], map[string]any{"level": "WARN", "route": "", "code": "route_not_found", "status": float64(404),
				"event_id": notFoundID, "remote_ip": "127.0.0.1", "path": "/hooks/nope"})
			wantFields(t, refused[1], map[string]any{"level": "WARN", "route": "pass", "code": "invalid_json", "status": float64(400),
				"event_id": badID, "remote_ip": "127.0.0.1"})
			wantFields(t, refused[2], map[string]any{"level": "WARN", "route": "signed", "code": "bad_credentials", "status": float64(401),
				"event_id": unauthID, "remote_ip": "127.0.0.1"})
			wantFields(t, refused[3], map[string]any{"level": "WARN", "route": "broken", "code": "plugin_failed", "status": float64(502),
				"event_id": brokenID, "remote_ip": "127.0.0.1"})

			access := 0
			for _, l := range lines {
				if l["msg"] == "request" {
					access++
				}
			}
			if want := map[bool]int{false: 0, true: 7}[tt.access]; access != want {
				t.Errorf("%d access lines, want %d", access, want)
			}
			infos := 0
			for _, l := range lines {
				if l["level"] == "INFO" {
					infos++
				}
			}
			if tt.level == "warn" && infos != 0 {
				t.Errorf("%d info lines at level warn", infos)
			}
			if tt.level == "" && infos == 0 {
				t.Error("no info line at the default level (listening, stopped)")
			}
			if strings.Contains(o.stderr.String(), "secret-key-123") || strings.Contains(o.stderr.String(), "token=abc") ||
				strings.Contains(o.stderr.String(), "wrong-but-secret-looking") || strings.Contains(o.stderr.String(), "s3cret-token") {
				t.Error("the log holds a target secret")
			}
		})
	}
}

func jsonLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("a log line is not JSON (format = \"json\"): %q", sc.Text())
		}
		out = append(out, m)
	}
	return out
}

// only returns the one line with msg, failing unless there is exactly one.
func only(t *testing.T, lines []map[string]any, msg string) map[string]any {
	t.Helper()
	var found []map[string]any
	for _, l := range lines {
		if l["msg"] == msg {
			found = append(found, l)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d lines %q, want 1: %v", len(found), msg, found)
	}
	return found[0]
}

func wantFields(t *testing.T, line map[string]any, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s line: %s = %v, want %v", line["msg"], k, line[k], v)
		}
	}
}
