package metrics

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/plugins/abi"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape GETs /metrics from a loopback server running reg.Handler, checks
// it is the text format, and parses it.
func scrape(t *testing.T, reg *Registry) map[string]*dto.MetricFamily {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", reg.Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("GET /metrics: Content-Type %q, want the Prometheus text format", ct)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing the exposition: %v", err)
	}
	return fams
}

// find returns the sample of family name whose labels are exactly labels
// ("k=v" pairs), or nil.
func find(fams map[string]*dto.MetricFamily, name string, labels ...string) *dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
	want := strings.Join(labels, ",")
	for _, m := range f.Metric {
		if labelString(m) == want {
			return m
		}
	}
	return nil
}

func labelString(m *dto.Metric) string {
	var ls []string
	for _, l := range m.Label {
		ls = append(ls, l.GetName()+"="+l.GetValue())
	}
	sort.Strings(ls)
	return strings.Join(ls, ",")
}

// value is the counter or gauge value of one sample; the test fails if the
// sample is absent.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	m := find(fams, name, labels...)
	if m == nil {
		t.Fatalf("%s{%s}: no such sample", name, strings.Join(labels, ","))
	}
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	t.Fatalf("%s{%s}: not a counter or gauge", name, strings.Join(labels, ","))
	return 0
}

// labelValues lists the distinct values label takes in family name.
func labelValues(fams map[string]*dto.MetricFamily, name, label string) []string {
	seen := map[string]bool{}
	if f := fams[name]; f != nil {
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if l.GetName() == label {
					seen[l.GetValue()] = true
				}
			}
		}
	}
	var out []string
	for v := range seen {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

func TestScrapeAfterKnownTraffic(t *testing.T) {
	reg := New("v1.2.3")

	howxm := reg.Route("howxm")
	for _, d := range []time.Duration{200 * time.Microsecond, 3 * time.Millisecond, 2 * time.Second} {
		howxm.Request()
		howxm.Observe(d)
	}
	howxm.Reject(ReasonBadJSON)
	howxm.Duplicate()
	howxm.Duplicate()
	howxm.Dropped()
	none := reg.Unrouted()
	none.Request()
	none.Reject(ReasonNotFound)
	none.Reject(Reason(200)) // out of range: counted as other

	filter := reg.Plugin("filter")
	filter.Call(40*time.Microsecond, "")
	filter.Call(100*time.Millisecond, abi.KindTimeout)
	filter.Call(time.Millisecond, "brand-new-kind") // unknown: other
	reg.PluginObserver("template").Call(5*time.Microsecond, abi.KindTrap)

	crm := reg.Target("crm")
	crm.Attempt(delivery.AttemptSuccess, 200, 20*time.Millisecond)
	crm.Attempt(delivery.AttemptSuccess, 204, 30*time.Millisecond)
	crm.Attempt(delivery.AttemptRetry, 503, time.Second)
	crm.Attempt(delivery.AttemptRetry, 0, 5*time.Second) // transport failure
	crm.Attempt(delivery.AttemptDead, 404, time.Millisecond)
	crm.Attempt(delivery.AttemptError, 302, time.Millisecond)
	crm.Attempt(delivery.AttemptOutcome(9), 600, time.Millisecond) // out of range: error, none
	fwd := reg.Target("sync")
	// A sync route's attempts, as the gateway records them: a transport
	// failure has no status, a non-2xx answer is an error.
	fwd.Attempted(nil, 1, &delivery.Attempt{Status: 201, Duration: time.Millisecond, Outcome: delivery.AttemptSuccess})
	fwd.Attempted(nil, 1, &delivery.Attempt{Duration: time.Millisecond, Outcome: delivery.AttemptError, Error: "connection refused"})
	fwd.Attempted(nil, 1, &delivery.Attempt{Status: 429, Duration: time.Millisecond, Outcome: delivery.AttemptError})

	reg.SetQueueStats(func() map[string]QueueStat {
		return map[string]QueueStat{
			"crm":    {Depth: 7, OldestPending: 90 * time.Second, DeadLetters: 2, Breaker: "half-open"},
			"sms":    {Breaker: "open"},
			"gone":   {Depth: 1, OldestPending: 1500 * time.Millisecond}, // no breaker: not configured any more
			"survey": {Breaker: "closed"},
			"down":   {Depth: 3, Breaker: "disabled"}, // disable_after
		}
	})
	reg.SetPluginPool(func() map[string]PoolStat {
		return map[string]PoolStat{"filter": {Busy: 1, Idle: 3}}
	})

	fams := scrape(t, reg)

	counters := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"hookgate_route_requests_total", []string{"route=howxm"}, 3},
		{"hookgate_route_requests_total", []string{"route="}, 1},
		{"hookgate_route_rejected_total", []string{"reason=bad_json", "route=howxm"}, 1},
		{"hookgate_route_rejected_total", []string{"reason=body_too_large", "route=howxm"}, 0},
		{"hookgate_route_rejected_total", []string{"reason=not_found", "route="}, 1},
		{"hookgate_route_rejected_total", []string{"reason=other", "route="}, 1},
		{"hookgate_route_duplicates_total", []string{"route=howxm"}, 2},
		{"hookgate_route_dropped_total", []string{"route=howxm"}, 1},
		{"hookgate_plugin_calls_total", []string{"plugin=filter"}, 3},
		{"hookgate_plugin_calls_total", []string{"plugin=template"}, 1},
		{"hookgate_plugin_errors_total", []string{"kind=timeout", "plugin=filter"}, 1},
		{"hookgate_plugin_errors_total", []string{"kind=other", "plugin=filter"}, 1},
		{"hookgate_plugin_errors_total", []string{"kind=trap", "plugin=filter"}, 0},
		{"hookgate_plugin_errors_total", []string{"kind=trap", "plugin=template"}, 1},
		{"hookgate_target_attempts_total", []string{"class=2xx", "outcome=success", "target=crm"}, 2},
		{"hookgate_target_attempts_total", []string{"class=5xx", "outcome=retry", "target=crm"}, 1},
		{"hookgate_target_attempts_total", []string{"class=none", "outcome=retry", "target=crm"}, 1},
		{"hookgate_target_attempts_total", []string{"class=4xx", "outcome=dead", "target=crm"}, 1},
		{"hookgate_target_attempts_total", []string{"class=3xx", "outcome=error", "target=crm"}, 1},
		{"hookgate_target_attempts_total", []string{"class=none", "outcome=error", "target=crm"}, 1},
		{"hookgate_target_attempts_total", []string{"class=2xx", "outcome=success", "target=sync"}, 1},
		{"hookgate_target_attempts_total", []string{"class=none", "outcome=error", "target=sync"}, 1},
		{"hookgate_target_attempts_total", []string{"class=4xx", "outcome=error", "target=sync"}, 1},
		{"hookgate_target_queue_depth", []string{"target=crm"}, 7},
		{"hookgate_target_queue_depth", []string{"target=gone"}, 1},
		{"hookgate_target_oldest_pending_seconds", []string{"target=crm"}, 90},
		{"hookgate_target_oldest_pending_seconds", []string{"target=gone"}, 1.5},
		{"hookgate_target_dead_letters", []string{"target=crm"}, 2},
		{"hookgate_target_breaker_state", []string{"target=crm"}, 1},
		{"hookgate_target_breaker_state", []string{"target=sms"}, 2},
		{"hookgate_target_breaker_state", []string{"target=down"}, 3},
		{"hookgate_target_breaker_state", []string{"target=survey"}, 0},
		{"hookgate_plugin_instances", []string{"plugin=filter", "state=busy"}, 1},
		{"hookgate_plugin_instances", []string{"plugin=filter", "state=idle"}, 3},
		{"hookgate_build_info", []string{"goversion=" + runtime.Version(), "version=v1.2.3"}, 1},
	}
	for _, c := range counters {
		t.Run(c.name+"{"+strings.Join(c.labels, ",")+"}", func(t *testing.T) {
			if got := value(t, fams, c.name, c.labels...); got != c.want {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}

	// crm: seven attempts, six distinct (outcome, class) pairs; sync: three.
	// Pairs never seen are not exported.
	if n := len(fams["hookgate_target_attempts_total"].Metric); n != 9 {
		t.Errorf("hookgate_target_attempts_total has %d series, want 9", n)
	}
	if m := find(fams, "hookgate_target_breaker_state", "target=gone"); m != nil {
		t.Errorf("breaker gauge exported for a target without a breaker: %v", m)
	}

	histograms := []struct {
		name, label string
		count       uint64
		sum         float64
		buckets     map[float64]uint64 // upper bound -> cumulative count
	}{
		{"hookgate_route_request_duration_seconds", "route=howxm", 3, 2.0032,
			map[float64]uint64{.0001: 0, .00025: 1, .0025: 1, .005: 2, 1: 2, 2.5: 3, 10: 3}},
		{"hookgate_plugin_call_duration_seconds", "plugin=filter", 3, 0.10104,
			map[float64]uint64{.00001: 0, .00005: 1, .001: 2, .05: 2, .1: 3}},
		{"hookgate_target_attempt_duration_seconds", "target=crm", 7, 6.053,
			map[float64]uint64{.001: 3, .025: 4, .05: 5, 1: 6, 5: 7}},
	}
	for _, h := range histograms {
		t.Run(h.name, func(t *testing.T) {
			m := find(fams, h.name, h.label)
			if m == nil || m.Histogram == nil {
				t.Fatalf("%s{%s}: no histogram", h.name, h.label)
			}
			if got := m.Histogram.GetSampleCount(); got != h.count {
				t.Errorf("count %d, want %d", got, h.count)
			}
			if got := m.Histogram.GetSampleSum(); fmt.Sprintf("%.6f", got) != fmt.Sprintf("%.6f", h.sum) {
				t.Errorf("sum %v, want %v", got, h.sum)
			}
			seen := 0
			for _, b := range m.Histogram.Bucket {
				if want, ok := h.buckets[b.GetUpperBound()]; ok {
					seen++
					if got := b.GetCumulativeCount(); got != want {
						t.Errorf("bucket le=%v: %d, want %d", b.GetUpperBound(), got, want)
					}
				}
			}
			if seen != len(h.buckets) {
				t.Errorf("found %d of the %d buckets checked", seen, len(h.buckets))
			}
		})
	}

	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total", "process_resident_memory_bytes"} {
		if fams[name] == nil {
			t.Errorf("%s missing: the Go runtime and process collectors are not registered", name)
		}
	}
}

// TestConventions checks every hookgate family against the Prometheus
// naming rules and the label sets promised, whatever was observed.
func TestConventions(t *testing.T) {
	reg := New("dev")
	reg.Route("r").Request()
	reg.Plugin("p").Call(time.Millisecond, "")
	reg.Target("t").Attempt(delivery.AttemptSuccess, 200, time.Millisecond)
	reg.SetQueueStats(func() map[string]QueueStat { return map[string]QueueStat{"t": {Breaker: "closed"}} })
	reg.SetPluginPool(func() map[string]PoolStat { return map[string]PoolStat{"p": {}} })
	fams := scrape(t, reg)

	want := map[string]struct {
		typ    dto.MetricType
		labels string
	}{
		"hookgate_route_requests_total":            {dto.MetricType_COUNTER, "route"},
		"hookgate_route_rejected_total":            {dto.MetricType_COUNTER, "reason,route"},
		"hookgate_route_duplicates_total":          {dto.MetricType_COUNTER, "route"},
		"hookgate_route_dropped_total":             {dto.MetricType_COUNTER, "route"},
		"hookgate_route_request_duration_seconds":  {dto.MetricType_HISTOGRAM, "route"},
		"hookgate_plugin_calls_total":              {dto.MetricType_COUNTER, "plugin"},
		"hookgate_plugin_errors_total":             {dto.MetricType_COUNTER, "kind,plugin"},
		"hookgate_plugin_call_duration_seconds":    {dto.MetricType_HISTOGRAM, "plugin"},
		"hookgate_plugin_instances":                {dto.MetricType_GAUGE, "plugin,state"},
		"hookgate_target_attempts_total":           {dto.MetricType_COUNTER, "class,outcome,target"},
		"hookgate_target_attempt_duration_seconds": {dto.MetricType_HISTOGRAM, "target"},
		"hookgate_target_queue_depth":              {dto.MetricType_GAUGE, "target"},
		"hookgate_target_oldest_pending_seconds":   {dto.MetricType_GAUGE, "target"},
		"hookgate_target_breaker_state":            {dto.MetricType_GAUGE, "target"},
		"hookgate_target_dead_letters":             {dto.MetricType_GAUGE, "target"},
		"hookgate_build_info":                      {dto.MetricType_GAUGE, "goversion,version"},
	}
	got := 0
	for name, f := range fams {
		if !strings.HasPrefix(name, "hookgate_") {
			continue
		}
		got++
		w, ok := want[name]
		if !ok {
			t.Errorf("%s: a family nobody documented", name)
			continue
		}
		if f.GetType() != w.typ {
			t.Errorf("%s: type %v, want %v", name, f.GetType(), w.typ)
		}
		if f.GetHelp() == "" {
			t.Errorf("%s: no HELP", name)
		}
		for _, m := range f.Metric {
			var names []string
			for _, l := range m.Label {
				names = append(names, l.GetName())
			}
			sort.Strings(names)
			if s := strings.Join(names, ","); s != w.labels {
				t.Errorf("%s: labels %s, want %s", name, s, w.labels)
			}
		}
	}
	if got != len(want) {
		t.Errorf("%d hookgate families exported, want %d", got, len(want))
	}
}

func TestBoundedLabels(t *testing.T) {
	reg := New("dev")
	m := reg.Route("r")
	for i := range 256 {
		m.Reject(Reason(i))
	}
	p := reg.Plugin("p")
	for _, k := range []string{"", "timeout", "trap", "exit", "memory", "output", "failed", "abi", "x", "TIMEOUT", "evt-123"} {
		p.Call(time.Microsecond, k)
	}
	tm := reg.Target("t")
	for _, status := range []int{-1, 0, 99, 100, 199, 200, 299, 301, 404, 418, 500, 599, 600, 1000} {
		for o := range 6 {
			tm.Attempt(delivery.AttemptOutcome(o), status, time.Millisecond)
		}
	}
	// Not sent for want of an OAuth2 token: its own class, whatever the status says.
	tm.Attempted(nil, 1, &delivery.Attempt{Outcome: delivery.AttemptRetry, Status: 0, NoToken: true})
	fams := scrape(t, reg)
	cases := []struct {
		name, family, label, want string
	}{
		{"reasons", "hookgate_route_rejected_total", "reason",
			"bad_json,bad_request,body_too_large,duplicate,internal,method_not_allowed,not_found,other,overloaded,plugin_error,queue_error,queue_full,target_disabled,target_error,unauthorized,unknown_target"},
		{"kinds", "hookgate_plugin_errors_total", "kind", "abi,busy,exit,failed,memory,other,output,timeout,trap"},
		{"outcomes", "hookgate_target_attempts_total", "outcome", "dead,error,retry,success"},
		{"classes", "hookgate_target_attempts_total", "class", "2xx,3xx,4xx,5xx,none,token"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := strings.Join(labelValues(fams, c.family, c.label), ","); got != c.want {
				t.Fatalf("%s values: %s, want %s", c.label, got, c.want)
			}
		})
	}
	// 256 rejections: the 16 named reasons once each, the other 240 as other.
	if got := value(t, fams, "hookgate_route_rejected_total", "reason=other", "route=r"); got != 241 {
		t.Errorf("reason=other: %v, want 241", got)
	}
	// "x", "TIMEOUT" and "evt-123" are not kinds.
	if got := value(t, fams, "hookgate_plugin_errors_total", "kind=other", "plugin=p"); got != 3 {
		t.Errorf("kind=other: %v, want 3", got)
	}
}

func TestSameNameSameHandle(t *testing.T) {
	reg := New("dev")
	cases := []struct {
		name string
		same bool
	}{
		{"route", reg.Route("a") == reg.Route("a") && reg.Route("a") != reg.Route("b") && reg.Unrouted() == reg.Route("")},
		{"plugin", reg.Plugin("a") == reg.Plugin("a") && reg.Plugin("a") != reg.Plugin("b")},
		{"target", reg.Target("a") == reg.Target("a") && reg.Target("a") != reg.Target("b")},
		{"observer", reg.PluginObserver("a").(*PluginMetrics) == reg.Plugin("a")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !c.same {
				t.Fatal("asking twice for a name gave two handles, or two names one handle")
			}
		})
	}

	// A reload asks again: the counters carry on.
	reg.Route("a").Request()
	reg.Route("a").Request()
	reg.Target("a").Attempt(delivery.AttemptSuccess, 200, time.Millisecond)
	reg.Target("a").Attempt(delivery.AttemptSuccess, 201, time.Millisecond)
	fams := scrape(t, reg)
	if got := value(t, fams, "hookgate_route_requests_total", "route=a"); got != 2 {
		t.Errorf("requests after a reload: %v, want 2", got)
	}
	if got := value(t, fams, "hookgate_target_attempts_total", "class=2xx", "outcome=success", "target=a"); got != 2 {
		t.Errorf("attempts after a reload: %v, want 2", got)
	}
}

func TestNilSafe(t *testing.T) {
	var reg *Registry
	cases := []struct {
		name string
		call func()
	}{
		{"route", func() {
			m := reg.Route("x")
			m.Request()
			m.Reject(ReasonBadJSON)
			m.Duplicate()
			m.Dropped()
			m.Observe(time.Second)
			_ = m.Name()
			reg.Unrouted().Request()
		}},
		{"plugin", func() {
			reg.Plugin("x").Call(time.Second, abi.KindTrap)
			reg.PluginObserver("x").Call(time.Second, "")
		}},
		{"target", func() { reg.Target("x").Attempt(delivery.AttemptDead, 500, time.Second) }},
		{"registry", func() {
			reg.SetQueueStats(func() map[string]QueueStat { return nil })
			reg.SetPluginPool(func() map[string]PoolStat { return nil })
			if _, err := reg.Gatherer().Gather(); err != nil {
				panic(err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				if v := recover(); v != nil {
					t.Fatalf("panicked: %v", v)
				}
			}()
			c.call()
		})
	}
	if reg.Route("x") != nil || reg.Plugin("x") != nil || reg.Target("x") != nil {
		t.Error("a nil Registry handed out a non-nil handle")
	}
	rec := httptest.NewRecorder()
	reg.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("nil Registry handler: status %d, want 404", rec.Code)
	}
}

func TestScrapeFuncs(t *testing.T) {
	reg := New("dev")
	stats := func(depth int) func() map[string]QueueStat {
		return func() map[string]QueueStat { return map[string]QueueStat{"crm": {Depth: depth, Breaker: "closed"}} }
	}
	cases := []struct {
		name  string
		set   func()
		depth float64 // -1: the family is absent
	}{
		{"unset", func() {}, -1},
		{"set", func() { reg.SetQueueStats(stats(3)) }, 3},
		{"replaced on reload", func() { reg.SetQueueStats(stats(5)) }, 5},
		{"removed", func() { reg.SetQueueStats(nil) }, -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.set()
			fams := scrape(t, reg)
			if c.depth < 0 {
				if fams["hookgate_target_queue_depth"] != nil {
					t.Fatal("hookgate_target_queue_depth exported with no stats func")
				}
				return
			}
			if got := value(t, fams, "hookgate_target_queue_depth", "target=crm"); got != c.depth {
				t.Fatalf("depth %v, want %v", got, c.depth)
			}
		})
	}
}

// TestConcurrentFirstUse races handle creation and the first use of each
// (outcome, class) pair; run with -race. Every attempt must be counted
// exactly once.
func TestConcurrentFirstUse(t *testing.T) {
	reg := New("dev")
	const workers, per = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				reg.Route("r").Request()
				reg.Target("t").Attempt(delivery.AttemptOutcome(i%4), 200+100*(w%4), time.Millisecond)
			}
		}()
	}
	wg.Wait()
	fams := scrape(t, reg)
	if got := value(t, fams, "hookgate_route_requests_total", "route=r"); got != workers*per {
		t.Errorf("requests %v, want %d", got, workers*per)
	}
	total := 0.0
	for _, m := range fams["hookgate_target_attempts_total"].Metric {
		total += m.Counter.GetValue()
	}
	if total != workers*per {
		t.Errorf("attempts %v, want %d", total, workers*per)
	}
	if n := len(fams["hookgate_target_attempts_total"].Metric); n != 16 {
		t.Errorf("%d attempt series, want 16 (4 outcomes x 4 classes)", n)
	}
}

// TestZeroSeries: before any traffic, each route exports at 0 the reasons
// it can meet, and only those.
func TestZeroSeries(t *testing.T) {
	reg := New("dev")
	reg.Route("a")
	reg.Unrouted()
	fams := scrape(t, reg)
	reasons := map[string][]string{}
	for _, m := range fams["hookgate_route_rejected_total"].Metric {
		var route, reason string
		for _, l := range m.Label {
			switch l.GetName() {
			case "route":
				route = l.GetValue()
			case "reason":
				reason = l.GetValue()
			}
		}
		if v := m.Counter.GetValue(); v != 0 {
			t.Errorf("route %q reason %s = %v before any traffic", route, reason, v)
		}
		reasons[route] = append(reasons[route], reason)
	}
	cases := []struct {
		name, route, want string
	}{
		{"named route", "a", "bad_json,body_too_large,duplicate,internal,other,plugin_error,queue_error,queue_full,target_disabled,target_error,unauthorized,unknown_target"},
		{"unrouted", "", "bad_request,internal,method_not_allowed,not_found,other,overloaded"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := reasons[c.route]
			sort.Strings(got)
			if s := strings.Join(got, ","); s != c.want {
				t.Fatalf("reasons at 0: %s, want %s", s, c.want)
			}
		})
	}
}

// TestOpenMetrics: a scraper that asks for OpenMetrics gets it (the
// README promises it); one that asks for nothing gets the text format.
func TestOpenMetrics(t *testing.T) {
	reg := New("dev")
	reg.Route("r").Request()
	srv := httptest.NewServer(reg.Handler())
	defer srv.Close()

	tests := []struct {
		name, accept, wantType string
		wantBody               []string
	}{
		{
			name:     "openmetrics when asked",
			accept:   "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
			wantType: "application/openmetrics-text",
			wantBody: []string{"# TYPE hookgate_route_requests counter\n", "hookgate_route_requests_total{route=\"r\"} 1.0\n"},
		},
		{
			name:     "text by default",
			wantType: "text/plain; version=0.0.4",
			wantBody: []string{"# TYPE hookgate_route_requests_total counter\n", "hookgate_route_requests_total{route=\"r\"} 1\n"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.URL, nil)
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.wantType) {
				t.Fatalf("Content-Type %q, want %s", ct, tc.wantType)
			}
			for _, w := range tc.wantBody {
				if !strings.Contains(string(body), w) {
					t.Errorf("the answer lacks %q:\n%s", w, body)
				}
			}
			if eof := strings.HasSuffix(string(body), "# EOF\n"); eof != (tc.accept != "") {
				t.Errorf("ends with # EOF: %v, want %v", eof, tc.accept != "")
			}
		})
	}
}
