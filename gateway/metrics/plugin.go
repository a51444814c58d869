package metrics

import (
	"time"

	"github.com/hookgate/hookgate/plugins/abi"
	"github.com/prometheus/client_golang/prometheus"
)

// The kind labels of hookgate_plugin_errors_total: abi.Kinds (the Kind of
// transforms.PluginError), then KindOther for any kind not among them.
const KindOther = "other"

var pluginKinds = func() (k [len(abi.Kinds) + 1]string) {
	copy(k[:], abi.Kinds[:])
	k[len(abi.Kinds)] = KindOther
	return k
}()

// kindIndex maps a kind to its slot; comparing strings does not allocate.
func kindIndex(kind string) int {
	for i, k := range pluginKinds[:len(pluginKinds)-1] {
		if k == kind {
			return i
		}
	}
	return len(pluginKinds) - 1
}

// CallObserver is what the WASM host calls after every plugin call. It is
// an alias of an unnamed interface type, so the host can declare the very
// same type without importing this package:
//
//	// in package transforms
//	type CallObserver = interface{ Call(d time.Duration, kind string) }
//	type Observer interface{ PluginObserver(plugin string) CallObserver }
//
// and *Registry satisfies transforms.Observer as it is.
type CallObserver = interface {
	Call(d time.Duration, kind string)
}

// PluginMetrics are one plugin's handles. Get them once per plugin when it
// is loaded; every method is safe on a nil *PluginMetrics and allocates
// nothing.
type PluginMetrics struct {
	name     string
	calls    prometheus.Counter
	errors   [len(pluginKinds)]prometheus.Counter
	duration prometheus.Observer
}

// Plugin returns the handles of the plugin named name, creating them the
// first time; the same name always gives the same handle. Every kind of
// hookgate_plugin_errors_total starts at 0.
func (r *Registry) Plugin(name string) *PluginMetrics {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if m := r.plugins[name]; m != nil {
		return m
	}
	v := labelValue(name)
	m := &PluginMetrics{
		name:     name,
		calls:    r.pluginCalls.WithLabelValues(v),
		duration: r.pluginDuration.WithLabelValues(v),
	}
	for i, k := range pluginKinds {
		m.errors[i] = r.pluginErrors.WithLabelValues(v, k)
	}
	r.plugins[name] = m
	return m
}

// PluginObserver is Plugin for the WASM host, which sees only the
// CallObserver interface. It returns a usable no-op on a nil Registry.
func (r *Registry) PluginObserver(name string) CallObserver { return r.Plugin(name) }

// Call records one plugin call that took d; kind is "" for a call that
// succeeded, else the failure's kind (transforms.PluginError.Kind).
func (m *PluginMetrics) Call(d time.Duration, kind string) {
	if m == nil {
		return
	}
	m.calls.Inc()
	m.duration.Observe(d.Seconds())
	if kind != "" {
		m.errors[kindIndex(kind)].Inc()
	}
}

// PoolStat is one plugin's instance pool at scrape time.
type PoolStat struct {
	Busy int // instances running a call
	Idle int // instances ready for one
}

// SetPluginPool sets the func read at every scrape for
// hookgate_plugin_instances{plugin,state}. It replaces any earlier one (a
// reload may hand in a new host); nil removes it.
func (r *Registry) SetPluginPool(f func() map[string]PoolStat) {
	if r == nil {
		return
	}
	if f == nil {
		r.poolStats.Store(nil)
		return
	}
	r.poolStats.Store(&f)
}

var descInstances = prometheus.NewDesc(namespace+"_plugin_instances",
	"Plugin instances by state: busy (running a call) or idle (ready).", []string{"plugin", "state"}, nil)

// poolCollector reads the plugin pools at scrape time.
type poolCollector Registry

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descInstances }

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	f := c.poolStats.Load()
	if f == nil {
		return
	}
	for name, s := range (*f)() {
		v := labelValue(name)
		ch <- prometheus.MustNewConstMetric(descInstances, prometheus.GaugeValue, float64(s.Busy), v, "busy")
		ch <- prometheus.MustNewConstMetric(descInstances, prometheus.GaugeValue, float64(s.Idle), v, "idle")
	}
}
