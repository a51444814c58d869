package main

import (
	"sort"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds, from 1µs to 60s, with three
// significant digits: enough to tell 1.23ms from 1.24ms, cheap to merge.
const (
	histMin    = 1
	histMax    = int64(60 * time.Second / time.Microsecond)
	histDigits = 3
)

func newHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(histMin, histMax, histDigits)
}

// recordLatency clamps instead of failing: a 90 s outlier still counts as
// "at least 60 s" rather than vanishing from the tail.
func recordLatency(h *hdrhistogram.Histogram, d time.Duration) {
	us := int64(d / time.Microsecond)
	if us < histMin {
		us = histMin
	}
	if us > histMax {
		us = histMax
	}
	_ = h.RecordValue(us)
}

// Latency is the summary of one histogram, in milliseconds (what people
// read in a table).
type Latency struct {
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p999_ms"`
	Max  float64 `json:"max_ms"`
}

func summarize(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Latency{
		P50:  ms(h.ValueAtQuantile(50)),
		P90:  ms(h.ValueAtQuantile(90)),
		P99:  ms(h.ValueAtQuantile(99)),
		P999: ms(h.ValueAtQuantile(99.9)),
		Max:  ms(h.Max()),
	}
}

// Spread is one metric over the rounds of a scenario: the median is what
// the table compares, min and max show how much to trust it.
type Spread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

func spreadOf(vs []float64) Spread {
	if len(vs) == 0 {
		return Spread{}
	}
	s := append([]float64(nil), vs...)
	sort.Float64s(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return Spread{Median: med, Min: s[0], Max: s[n-1]}
}

// Round is what one measurement of one scenario produced.
type Round struct {
	Index     int           `json:"round"` // 1-based: which round of the run
	Requests  int64         `json:"requests"`
	RPS       float64       `json:"rps"`
	Latency   Latency       `json:"latency"`
	Non2xx    int64         `json:"non_2xx"`
	Transport int64         `json:"transport_errors"`
	Unsent    int64         `json:"unsent"` // open loop: scheduled sends that never left before the end
	Elapsed   time.Duration `json:"elapsed_ns"`
	Statuses  map[int]int64 `json:"statuses,omitempty"`
	FirstErr  string        `json:"first_error,omitempty"`

	// The process under test (the proxy, or the sink in "direct"); zero
	// when nothing was measured (user mode without --pid).
	CPUSeconds float64 `json:"cpu_seconds"`
	PeakRSS    int64   `json:"peak_rss_bytes"`
	// The queue server's CPU (the nats-server of async-nats), already
	// counted in CPUSeconds.
	QueueCPUSeconds float64 `json:"queue_server_cpu_seconds,omitempty"`
	// The sink's own CPU, so a proxy that makes the sink work harder
	// (extra headers, more connections) shows it.
	SinkCPUSeconds float64 `json:"sink_cpu_seconds,omitempty"`
	// The load generator's own CPU: near its cores x duration means the
	// generator, not the server, set the pace.
	GenCPUSeconds float64 `json:"load_generator_cpu_seconds"`

	// Async only: what reached the sink, counted from the start of the
	// measurement until the queue drained (or the drain limit).
	Delivered    int64         `json:"delivered,omitempty"`
	DeliveredRPS float64       `json:"delivered_rps,omitempty"`
	Drain        time.Duration `json:"drain_ns,omitempty"`
	// Undelivered is the acknowledged deliveries (probe, warm-up and
	// measurement) whose id the sink never received, CheckedIDs how many
	// were checked by id (0: by count only, see DeliveredNote), and
	// Duplicates the deliveries that arrived again (at least once allows
	// them; they are not losses).
	Undelivered   int64  `json:"undelivered,omitempty"`
	CheckedIDs    int64  `json:"checked_ids,omitempty"`
	Duplicates    int64  `json:"duplicates,omitempty"`
	DeliveredNote string `json:"delivered_note,omitempty"`
}

// CPUPerRequest is the server's CPU microseconds per completed request:
// unlike req/s it barely moves when a neighbour steals the core, so it is
// the steadier figure on a shared machine.
func (r Round) CPUPerRequest() float64 {
	if r.Requests == 0 {
		return 0
	}
	return r.CPUSeconds * 1e6 / float64(r.Requests)
}

// Errors is what the table shows as errors: anything that was not a 2xx.
func (r Round) Errors() int64 { return r.Non2xx + r.Transport }

// Summary is a scenario over all its rounds.
type Summary struct {
	Name         string  `json:"name"`
	Title        string  `json:"title"`
	Skipped      string  `json:"skipped,omitempty"`
	Note         string  `json:"note,omitempty"`
	Rounds       []Round `json:"rounds"`
	RPS          Spread  `json:"rps"`
	P50          Spread  `json:"p50_ms"`
	P90          Spread  `json:"p90_ms"`
	P99          Spread  `json:"p99_ms"`
	P999         Spread  `json:"p999_ms"`
	Max          Spread  `json:"max_ms"`
	Errors       Spread  `json:"errors"`
	CPU          Spread  `json:"cpu_seconds"`
	CPUPerReq    Spread  `json:"cpu_us_per_request"`
	RSS          Spread  `json:"peak_rss_bytes"`
	DeliveredRPS Spread  `json:"delivered_rps,omitempty"`
	QueueCPU     Spread  `json:"queue_server_cpu_seconds,omitempty"`
}

func summarizeRounds(name, title string, rs []Round) Summary {
	s := Summary{Name: name, Title: title, Rounds: rs}
	pick := func(f func(Round) float64) Spread {
		vs := make([]float64, len(rs))
		for i, r := range rs {
			vs[i] = f(r)
		}
		return spreadOf(vs)
	}
	s.RPS = pick(func(r Round) float64 { return r.RPS })
	s.P50 = pick(func(r Round) float64 { return r.Latency.P50 })
	s.P90 = pick(func(r Round) float64 { return r.Latency.P90 })
	s.P99 = pick(func(r Round) float64 { return r.Latency.P99 })
	s.P999 = pick(func(r Round) float64 { return r.Latency.P999 })
	s.Max = pick(func(r Round) float64 { return r.Latency.Max })
	s.Errors = pick(func(r Round) float64 { return float64(r.Errors()) })
	s.CPU = pick(func(r Round) float64 { return r.CPUSeconds })
	s.CPUPerReq = pick(func(r Round) float64 { return r.CPUPerRequest() })
	s.RSS = pick(func(r Round) float64 { return float64(r.PeakRSS) })
	s.DeliveredRPS = pick(func(r Round) float64 { return r.DeliveredRPS })
	s.QueueCPU = pick(func(r Round) float64 { return r.QueueCPUSeconds })
	return s
}
