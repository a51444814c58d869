package metrics

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookgate/hookgate/delivery"
)

// numOutcomes counts the delivery.AttemptOutcome values: the outcome label
// of hookgate_target_attempts_total is their text.
const numOutcomes = delivery.AttemptError + 1

// Status classes: the class label.
const (
	class2xx = iota
	class3xx
	class4xx
	class5xx
	classNone  // no HTTP answer (transport failure), or a status outside 200..599
	classToken // not sent: the target's OAuth2 token endpoint gave no token
	numClasses
)

var classNames = [numClasses]string{"2xx", "3xx", "4xx", "5xx", "none", "token"}

func classOf(status int) int {
	if status < 200 || status > 599 {
		return classNone
	}
	return status/100 - 2
}

// TargetMetrics are one target's handles. Get them once per target when
// its client or dispatch lane is built; every method is safe on a nil
// *TargetMetrics and allocates nothing once each (outcome, class) pair it
// sees has been seen once.
type TargetMetrics struct {
	name     string
	vec      *prometheus.CounterVec
	duration prometheus.Observer

	// attempts are resolved on first use: of the 20 (outcome, class) pairs
	// most never happen for a given target (success with no status), and
	// exporting them all as zeros would multiply the series by 20 per
	// target for nothing.
	mu       sync.Mutex
	attempts [numOutcomes][numClasses]atomic.Pointer[counter]
}

// counter boxes a prometheus.Counter so it fits an atomic.Pointer.
type counter struct{ prometheus.Counter }

// Target returns the handles of the target named name, creating them the
// first time; the same name always gives the same handle.
func (r *Registry) Target(name string) *TargetMetrics {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if m := r.targets[name]; m != nil {
		return m
	}
	v := labelValue(name)
	m := &TargetMetrics{
		name:     name,
		vec:      r.targetAttempts.MustCurryWith(prometheus.Labels{"target": v}),
		duration: r.targetDuration.WithLabelValues(v),
	}
	r.targets[name] = m
	return m
}

// Attempt records one delivery attempt that took d. status is the HTTP
// status the target answered, 0 when it did not answer (dial error,
// timeout, reset). An outcome that is not one of the four counts as
// delivery.AttemptError.
func (m *TargetMetrics) Attempt(outcome delivery.AttemptOutcome, status int, d time.Duration) {
	if m == nil {
		return
	}
	m.attempt(outcome, classOf(status), d)
}

// attempt counts one attempt of class cls.
func (m *TargetMetrics) attempt(outcome delivery.AttemptOutcome, cls int, d time.Duration) {
	if outcome >= numOutcomes {
		outcome = delivery.AttemptError
	}
	c := m.attempts[outcome][cls].Load()
	if c == nil {
		c = m.resolve(outcome, cls)
	}
	c.Inc()
	m.duration.Observe(d.Seconds())
}

// resolve creates the child for (outcome, class) once; the lock keeps two
// first attempts from boxing it twice.
func (m *TargetMetrics) resolve(outcome delivery.AttemptOutcome, cls int) *counter {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.attempts[outcome][cls].Load(); c != nil {
		return c
	}
	c := &counter{m.vec.WithLabelValues(outcome.String(), classNames[cls])}
	m.attempts[outcome][cls].Store(c)
	return c
}

// QueueStat is one target's queue and breaker at scrape time.
type QueueStat struct {
	Depth         int           // pending deliveries, being sent included
	OldestPending time.Duration // age of the oldest pending delivery; 0 when none
	DeadLetters   int
	// Breaker is the dispatch breaker state: "closed", "half-open",
	// "open" or "disabled" (exported as 0, 1, 2, 3); "" when the target has no breaker
	// (it is no longer configured), and the gauge is left out.
	Breaker string
}

// SetQueueStats sets the func read at every scrape for the queue depth,
// oldest pending age, breaker state and dead letter gauges. It replaces
// any earlier one; nil removes it.
func (r *Registry) SetQueueStats(f func() map[string]QueueStat) {
	if r == nil {
		return
	}
	if f == nil {
		r.queueStats.Store(nil)
		return
	}
	r.queueStats.Store(&f)
}

var (
	descQueueDepth = prometheus.NewDesc(namespace+"_target_queue_depth",
		"Deliveries waiting for the target, those being sent included.", []string{"target"}, nil)
	descOldest = prometheus.NewDesc(namespace+"_target_oldest_pending_seconds",
		"Age of the target's oldest pending delivery (0 when none): how far behind its lane is.", []string{"target"}, nil)
	descBreaker = prometheus.NewDesc(namespace+"_target_breaker_state",
		"The target's circuit breaker: 0 closed, 1 half-open, 2 open, 3 disabled (failed for disable_after; enable it through the admin API).", []string{"target"}, nil)
	descDead = prometheus.NewDesc(namespace+"_target_dead_letters",
		"Deliveries in the target's dead letters, waiting for a replay.", []string{"target"}, nil)
)

func breakerValue(s string) (float64, bool) {
	switch s {
	case "closed":
		return 0, true
	case "half-open":
		return 1, true
	case "open":
		return 2, true
	case "disabled": // disable_after: nothing is attempted until it is enabled
		return 3, true
	}
	return 0, false
}

// queueCollector reads the queue and dispatcher at scrape time.
type queueCollector Registry

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descQueueDepth
	ch <- descOldest
	ch <- descBreaker
	ch <- descDead
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	f := c.queueStats.Load()
	if f == nil {
		return
	}
	for name, s := range (*f)() {
		v := labelValue(name)
		ch <- prometheus.MustNewConstMetric(descQueueDepth, prometheus.GaugeValue, float64(s.Depth), v)
		ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, s.OldestPending.Seconds(), v)
		ch <- prometheus.MustNewConstMetric(descDead, prometheus.GaugeValue, float64(s.DeadLetters), v)
		if b, ok := breakerValue(s.Breaker); ok {
			ch <- prometheus.MustNewConstMetric(descBreaker, prometheus.GaugeValue, b, v)
		}
	}
}
