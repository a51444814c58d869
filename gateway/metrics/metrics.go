// Package metrics is hookgate's Prometheus instrumentation: per route,
// per plugin and per target families, scrape-time gauges read from the
// queue and the plugin pools, Go runtime and process metrics, and the
// handler that serves them at GET /metrics on the admin listener.
//
// The hot path never looks anything up by name. Each route, plugin and
// target asks the Registry once, when its table or pool is built, for a
// handle (*RouteMetrics, *PluginMetrics, *TargetMetrics) that holds the
// label children already resolved; an observation through a handle is a
// few atomic adds and allocates nothing.
//
//	reg := metrics.New(version)
//	rm := reg.Route("howxm")          // once, when the route table is built
//	rm.Request()                      // per request
//	rm.Reject(metrics.ReasonBadJSON)  // per refusal
//	rm.Observe(time.Since(start))     // per request, when it is answered
//	admin.Handle("GET /metrics", reg.Handler())
//
// # Notes
//
//   - A nil handle is a no-op, so a package works with metrics not wired
//     (tests, `hookgate try`). A nil *Registry hands out nil handles.
//   - Asking for the same name again returns the same handle: counters
//     carry on across a configuration reload. A name that leaves the
//     configuration keeps its last values until the process restarts.
//   - Label values are bounded by construction: names come from the
//     validated configuration, reasons, kinds and outcomes are typed
//     constants, and anything outside those sets is counted as "other".
//     Never pass an event id, a URL or a sender-chosen string as a name.
package metrics

import (
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "hookgate"

// Histogram buckets, in seconds. Each family gets the range its values
// actually fall in, so the quantiles an SRE asks for land between
// buckets that are close together.
var (
	// Ingest: from a dropped event answered in tens of microseconds to a
	// sync route waiting on a slow target for seconds.
	routeBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	// Plugin calls: microseconds for a filter, up to the default 100ms
	// timeout, a little past it for raised timeouts.
	pluginBuckets = []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}
	// Target attempts: a target on the same host to one at its timeout.
	targetBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
)

// Registry holds every hookgate family and hands out the per-name handles.
// Its methods are safe for concurrent use.
type Registry struct {
	reg *prometheus.Registry

	routeRequests   *prometheus.CounterVec
	routeRejected   *prometheus.CounterVec
	routeDuplicates *prometheus.CounterVec
	routeDropped    *prometheus.CounterVec
	routeDuration   *prometheus.HistogramVec

	pluginCalls    *prometheus.CounterVec
	pluginErrors   *prometheus.CounterVec
	pluginDuration *prometheus.HistogramVec

	targetAttempts *prometheus.CounterVec
	targetDuration *prometheus.HistogramVec

	mu      sync.Mutex
	routes  map[string]*RouteMetrics
	plugins map[string]*PluginMetrics
	targets map[string]*TargetMetrics

	queueStats atomic.Pointer[func() map[string]QueueStat]
	poolStats  atomic.Pointer[func() map[string]PoolStat]
}

// New creates a Registry with every hookgate family, the Go runtime and
// process collectors, and hookgate_build_info for version.
func New(version string) *Registry {
	r := &Registry{
		reg:     prometheus.NewRegistry(),
		routes:  map[string]*RouteMetrics{},
		plugins: map[string]*PluginMetrics{},
		targets: map[string]*TargetMetrics{},
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
		r.reg.MustRegister(c)
		return c
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: buckets}, labels)
		r.reg.MustRegister(h)
		return h
	}

	r.routeRequests = counter("route_requests_total",
		"Requests received, by the route they matched (route=\"\" for requests that matched none).", "route")
	r.routeRejected = counter("route_rejected_total",
		"Requests refused with an error answer, by route and reason.", "route", "reason")
	r.routeDuplicates = counter("route_duplicates_total",
		"Repeats of an event already accepted, answered as a success with the first copy's event id and delivered nothing.", "route")
	r.routeDropped = counter("route_dropped_total",
		"Events a plugin dropped on purpose (answered as a success, delivered nothing).", "route")
	r.routeDuration = histogram("route_request_duration_seconds",
		"Time from receiving a request to its answer, by route.", routeBuckets, "route")

	r.pluginCalls = counter("plugin_calls_total",
		"Plugin calls, failed ones included.", "plugin")
	r.pluginErrors = counter("plugin_errors_total",
		"Failed plugin calls, by kind (timeout, busy, trap, exit, memory, output, failed, abi).", "plugin", "kind")
	r.pluginDuration = histogram("plugin_call_duration_seconds",
		"Wall time of one plugin call.", pluginBuckets, "plugin")

	r.targetAttempts = counter("target_attempts_total",
		"Delivery attempts, by target, outcome (success, retry, dead, error) and status class (2xx..5xx, none when no HTTP answer, token when not sent for want of an OAuth2 token).",
		"target", "outcome", "class")
	r.targetDuration = histogram("target_attempt_duration_seconds",
		"Time one delivery attempt took, answer or failure.", targetBuckets, "target")

	r.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		(*queueCollector)(r),
		(*poolCollector)(r),
	)
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace:   namespace,
		Name:        "build_info",
		Help:        "Always 1; the labels say which hookgate build is running.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	info.Set(1)
	r.reg.MustRegister(info)
	return r
}

// Handler serves the registry in the Prometheus text format (or
// OpenMetrics / protobuf when the scraper asks for them). Mount it on the
// admin listener: admin.Handle("GET /metrics", reg.Handler()).
//
// # Notes
//
// A collector that fails (say, the queue stats func panics) costs its own
// families only: the handler serves the rest and logs nothing, since a
// scrape every few seconds would flood the log; the error is in the answer.
func (r *Registry) Handler() http.Handler {
	if r == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
		EnableOpenMetrics:   true, // without it, Accept: application/openmetrics-text gets the text format
	})
}

// Gatherer is the underlying registry, for tests and for anyone who wants
// to add a collector of their own.
func (r *Registry) Gatherer() prometheus.Gatherer {
	if r == nil {
		return prometheus.Gatherers(nil)
	}
	return r.reg
}

// labelValue makes name safe as a label value. Names come from the
// validated configuration, so this only guards against a panic inside
// client_golang (which refuses invalid UTF-8).
func labelValue(name string) string { return strings.ToValidUTF8(name, "\uFFFD") }
