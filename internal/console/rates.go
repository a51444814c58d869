package console

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// rates turns hookgate_target_attempts_total into each target's recent
// delivery rate and success ratio, the way a Grafana panel would
// (rate() over the last minute): the overview samples the counters each
// time it is drawn, and a figure is the difference between now and the
// oldest sample of the last minute. No sampling happens while nobody
// looks.
type rates struct {
	g       prometheus.Gatherer
	mu      sync.Mutex
	samples []sample // oldest first, at most one a second, the last rateWindow
}

// rateWindow is how far back a rate looks.
const rateWindow = time.Minute

type sample struct {
	at time.Time
	by map[string]counts
}

type counts struct{ attempts, success float64 }

// rate is one target's figures over the window; Known is false until
// two samples exist.
type rate struct {
	Known     bool
	PerSecond float64 // attempts a second
	Attempts  float64 // in the window
	Success   float64 // ratio of attempts that succeeded, when Attempts > 0
	Window    time.Duration
}

// RateText is the rate as the overview shows it.
func (r rate) RateText() string {
	if !r.Known {
		return "–"
	}
	return fmt.Sprintf("%.1f/s", r.PerSecond)
}

// SuccessText is the success ratio as the overview shows it.
func (r rate) SuccessText() string {
	if !r.Known || r.Attempts == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f%%", 100*r.Success)
}

func newRates(g prometheus.Gatherer) *rates { return &rates{g: g} }

// observe samples the counters and returns each target's rate.
func (r *rates) observe(now time.Time) map[string]rate {
	if r.g == nil {
		return nil
	}
	cur := sample{at: now, by: r.gather()}
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.samples) > 0 && now.Sub(r.samples[0].at) > rateWindow {
		r.samples = r.samples[1:]
	}
	out := map[string]rate{}
	if len(r.samples) > 0 {
		old := r.samples[0]
		dt := now.Sub(old.at)
		if dt > 0 {
			for name, c := range cur.by {
				o := old.by[name]
				n := c.attempts - o.attempts
				rt := rate{Known: true, PerSecond: n / dt.Seconds(), Attempts: n, Window: dt}
				if n > 0 {
					rt.Success = (c.success - o.success) / n
				}
				out[name] = rt
			}
		}
	}
	if len(r.samples) == 0 || now.Sub(r.samples[len(r.samples)-1].at) >= time.Second {
		r.samples = append(r.samples, cur)
	}
	return out
}

// gather reads hookgate_target_attempts_total by target.
func (r *rates) gather() map[string]counts {
	out := map[string]counts{}
	mfs, err := r.g.Gather()
	if err != nil && len(mfs) == 0 {
		return out
	}
	for _, mf := range mfs {
		if mf.GetName() != "hookgate_target_attempts_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var target, outcome string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "target":
					target = l.GetValue()
				case "outcome":
					outcome = l.GetValue()
				}
			}
			c := out[target]
			v := m.GetCounter().GetValue()
			c.attempts += v
			if outcome == "success" {
				c.success += v
			}
			out[target] = c
		}
	}
	return out
}
