package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"
)

// Report is one harness run: how it ran, and every scenario.
type Report struct {
	Date     time.Time     `json:"date"`
	Machine  Machine       `json:"machine"`
	Split    CoreSplit     `json:"core_split"`
	Command  string        `json:"command"`
	Load     string        `json:"load_model"`
	Payload  string        `json:"payload"`
	Duration time.Duration `json:"duration_ns"`
	Warmup   time.Duration `json:"warmup_ns"`
	Rounds   int           `json:"rounds"`
	Conns    int           `json:"conns"`
	Rate     float64       `json:"rate,omitempty"`
	UserMode bool          `json:"user_mode,omitempty"`
	Perf     string        `json:"perf_dir,omitempty"`
	Pipeline int           `json:"pipeline,omitempty"` // --pipeline: the targets' pipeline setting
	// TargetConns is the targets' max_conns (--target-conns), the
	// number of delivery workers of each async lane.
	TargetConns int `json:"target_conns,omitempty"`
	// /proc/loadavg before and after: on a shared machine, how much else
	// was running says how far to trust the spread.
	LoadBefore string `json:"loadavg_before"`
	LoadAfter  string `json:"loadavg_after"`

	Scenarios []Summary `json:"scenarios"`
	Goals     []Goal    `json:"goals,omitempty"`
}

// Goal is one of the project's bars, read against the table.
type Goal struct {
	Issue  int    `json:"issue"`
	Text   string `json:"goal"`
	Status string `json:"status"` // "met" | "not met" | "n/a"
	Detail string `json:"detail"`
}

func (r *Report) scenario(name string) *Summary {
	for i := range r.Scenarios {
		if r.Scenarios[i].Name == name && r.Scenarios[i].Skipped == "" && len(r.Scenarios[i].Rounds) > 0 {
			return &r.Scenarios[i]
		}
	}
	return nil
}

// evaluateGoals compares medians against the bars of the open issues (10
// and 16; issue 4's 1.2x nginx is the compass 16 aims at). They are the
// project's own reading of the table, not a pass/fail of the build.
func evaluateGoals(r *Report, o Options) []Goal {
	var gs []Goal
	ngx, pass := r.scenario(scNginx), r.scenario(scPassthrough)
	caveat := ""
	if o.Rate > 0 {
		caveat = " (open loop: rates are capped by --rate, so throughput ratios say little)"
	} else if o.Conns != 64 {
		caveat = fmt.Sprintf(" (measured at %d connections; the goal is stated at 64)", o.Conns)
	}
	// ratio is a bar on a scenario's req/s against passthrough's.
	ratio := func(issue int, name, text string, bar float64) Goal {
		g := Goal{Issue: issue, Text: text}
		s := r.scenario(name)
		if s == nil || pass == nil {
			g.Status, g.Detail = "n/a", "needs both the "+name+" and the passthrough rows"
			return g
		}
		x := s.RPS.Median / pass.RPS.Median
		g.Status, g.Detail = metStr(x >= bar), fmt.Sprintf("%.2fx passthrough%s%s", x, caveat, byRound(s, pass, rps))
		return g
	}

	for _, b := range []struct {
		issue int
		bar   float64
		text  string
	}{
		{16, 1.0, "hookgate sync passthrough >= 1.0x nginx req/s at 64 connections, with p99 no worse"},
		{4, 1.2, "hookgate sync passthrough >= 1.2x nginx req/s at 64 connections, with p99 no worse (the compass)"},
	} {
		g := Goal{Issue: b.issue, Text: b.text}
		if ngx == nil || pass == nil {
			g.Status, g.Detail = "n/a", "needs both the nginx and the passthrough rows"
		} else {
			x := pass.RPS.Median / ngx.RPS.Median
			g.Status = metStr(x >= b.bar && pass.P99.Median <= ngx.P99.Median)
			g.Detail = fmt.Sprintf("%.2fx nginx req/s; p99 %.2fms vs nginx %.2fms%s%s", x, pass.P99.Median, ngx.P99.Median, caveat, byRound(pass, ngx, rps))
		}
		gs = append(gs, g)
	}
	gs = append(gs,
		ratio(10, scHowxm, "hookgate sync with howxm-nps >= 0.8x passthrough req/s", 0.8),
		ratio(10, scChain, "hookgate sync with the chain of three >= 0.6x passthrough req/s", 0.6))

	// Issue 16's async bars depend on the queue's sync mode.
	if o.QueueSync == "batch" {
		gs = append(gs, ratio(16, scAsync, `hookgate async acknowledged ingest, sync = "batch", >= 0.8x passthrough req/s`, 0.8))
	} else {
		gs = append(gs, ratio(16, scAsync, `hookgate async acknowledged ingest, sync = "always", >= 0.5x passthrough req/s`, 0.5))
	}
	g := Goal{Issue: 16, Text: "CPU per async event <= 2x a passthrough request's"}
	if async := r.scenario(scAsync); async == nil || pass == nil {
		g.Status, g.Detail = "n/a", "needs both the async and the passthrough rows"
	} else {
		x := async.CPUPerReq.Median / pass.CPUPerReq.Median
		g.Status = metStr(x <= 2)
		g.Detail = fmt.Sprintf("%.1f / %.1f µs = %.2fx%s", async.CPUPerReq.Median, pass.CPUPerReq.Median, x, byRound(async, pass, cpuPerReq))
	}
	gs = append(gs, g)
	for _, name := range []string{scAsync, scAsyncNATS} {
		g := Goal{Issue: 16, Text: name + ": every acknowledged event delivered"}
		s := r.scenario(name)
		if s == nil {
			g.Status, g.Detail = "n/a", "needs the "+name+" row"
			gs = append(gs, g)
			continue
		}
		var lost int64
		for _, rd := range s.Rounds {
			lost += rd.Undelivered
		}
		g.Status, g.Detail = metStr(lost == 0), fmt.Sprintf("%d undelivered over %d rounds", lost, len(s.Rounds))
		gs = append(gs, g)
	}
	return gs
}

// byRound is a ratio round by round, each scenario against the other one
// measured in the same round: on a machine whose speed changes over
// minutes, the spread of these says how far to trust the ratio of the
// medians, which is what a goal is read from. From three rounds on it
// also gives their median: a round's two measurements are closer in time
// than the medians of two columns, so a slow spell that sinks one
// scenario's round moves it less. Empty for one round.
func byRound(a, b *Summary, f func(Round) float64) string {
	var parts []string
	var xs []float64
	for _, ra := range a.Rounds {
		for _, rb := range b.Rounds {
			if ra.Index == rb.Index && f(rb) > 0 {
				x := f(ra) / f(rb)
				parts = append(parts, fmt.Sprintf("%.2f", x))
				xs = append(xs, x)
			}
		}
	}
	if len(parts) < 2 {
		return ""
	}
	med := ""
	if len(xs) >= 3 {
		med = fmt.Sprintf(" (median %.2f)", spreadOf(xs).Median)
	}
	return "; round by round" + med + " " + strings.Join(parts, ", ")
}

func rps(r Round) float64 { return r.RPS }

func cpuPerReq(r Round) float64 {
	if r.Requests == 0 {
		return 0
	}
	return r.CPUSeconds / float64(r.Requests)
}

func metStr(ok bool) string {
	if ok {
		return "met"
	}
	return "not met"
}

// WriteJSON writes the report, every round included.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// WriteMarkdown writes the header, the table, the goals and the notes.
func (r *Report) WriteMarkdown(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("### hookgate benchmark, %s\n\n", r.Date.Format("2006-01-02 15:04 UTC"))
	p("- machine: %d CPUs, %s, Linux %s, %s\n", r.Machine.CPUs, r.Machine.CPUModel, r.Machine.Kernel, r.Machine.Go)
	p("- cores: %s\n", r.Split.describe())
	p("- other load on the machine (/proc/loadavg 1/5/15 min): %s before, %s after\n", r.LoadBefore, r.LoadAfter)
	p("- load: %s; payload %s; %d round(s) of %v after %v warm-up, scenarios interleaved round robin\n",
		r.Load, r.Payload, r.Rounds, r.Duration, r.Warmup)
	p("- command: `%s`\n", r.Command)
	if r.TargetConns > 0 {
		p("- hookgate's targets: `max_conns = %d` (so %d delivery workers per async target)\n", r.TargetConns, r.TargetConns)
	}
	if r.Pipeline > 0 {
		p("- hookgate's targets: `pipeline = %d` (HTTP/1.1 pipelining; nginx does not pipeline to its upstream)\n", r.Pipeline)
	}
	if r.Perf != "" {
		p("- round 1 of every scenario ran under `perf record` (reports in %s); its figures carry the sampling cost\n", r.Perf)
	}
	p("\n")
	p("Each cell is the median over the rounds, with (min-max) under it. Latency in ms; CPU is the server under test's user+system seconds during the measurement, and per request; RSS its peak (VmHWM).\n\n")

	p("| scenario | req/s | p50 | p90 | p99 | p99.9 | max | errors | CPU s | CPU µs/req | peak RSS MiB | vs direct | vs nginx |\n")
	p("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	direct, ngx := r.scenario(scDirect), r.scenario(scNginx)
	ratio := func(v float64, base *Summary) string {
		if base == nil || base.RPS.Median == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2fx", v/base.RPS.Median)
	}
	var notes []string
	for _, s := range r.Scenarios {
		if s.Skipped != "" {
			p("| %s | skipped | | | | | | | | | | | |\n", s.Name)
			notes = append(notes, fmt.Sprintf("`%s` skipped: %s", s.Name, s.Skipped))
			continue
		}
		if len(s.Rounds) == 0 {
			p("| %s | no data | | | | | | | | | | | |\n", s.Name)
			continue
		}
		p("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			s.Name, rpsCell(s.RPS), msCell(s.P50), msCell(s.P90), msCell(s.P99), msCell(s.P999), msCell(s.Max),
			countCell(s.Errors), numCell(s.CPU, 1), numCell(s.CPUPerReq, 1), mibCell(s.RSS), ratio(s.RPS.Median, direct), ratio(s.RPS.Median, ngx))
		if s.DeliveredRPS.Median > 0 {
			p("| %s (delivered) | %s | | | | | | %s | | | | %s | %s |\n",
				s.Name, rpsCell(s.DeliveredRPS), undeliveredCell(s), ratio(s.DeliveredRPS.Median, direct), ratio(s.DeliveredRPS.Median, ngx))
		}
		if s.Note != "" {
			notes = append(notes, fmt.Sprintf("`%s`: %s", s.Name, s.Note))
		}
		if base := r.scenario(s.Name + baseSuffix); base != nil {
			if n := pairedNote(s, *base); n != "" {
				notes = append(notes, n)
			}
		}
		if q := s.QueueCPU; q.Max > 0 && s.CPU.Median > 0 {
			notes = append(notes, fmt.Sprintf("`%s`: CPU and peak RSS are hookgate's plus nats-server's; nats-server's share of the CPU: %s s, %.0f%% of the median",
				s.Name, strings.ReplaceAll(numCell(q, 1), "<br>", " "), 100*q.Median/s.CPU.Median))
		}
		for i, rd := range s.Rounds {
			if rd.Errors() > 0 {
				notes = append(notes, fmt.Sprintf("`%s` round %d: %d non-2xx %v, %d transport errors%s",
					s.Name, i+1, rd.Non2xx, non2xx(rd.Statuses), rd.Transport, errSuffix(rd.FirstErr)))
			}
			if rd.Unsent > 0 {
				notes = append(notes, fmt.Sprintf("`%s` round %d: %d scheduled requests not sent by the end of the run: every connection was busy (the server fell behind --rate) or the generator itself lost its CPU", s.Name, i+1, rd.Unsent))
			}
			if rd.DeliveredNote != "" {
				notes = append(notes, fmt.Sprintf("`%s` round %d: %s", s.Name, i+1, rd.DeliveredNote))
			}
			if rd.Undelivered > 0 && rd.CheckedIDs > 0 {
				notes = append(notes, fmt.Sprintf("`%s` round %d: %d of %d acknowledged deliveries never reached the sink (compared by delivery id)", s.Name, i+1, rd.Undelivered, rd.CheckedIDs))
			}
			if rd.Duplicates > 0 {
				notes = append(notes, fmt.Sprintf("`%s` round %d: duplicated deliveries: %d (an id the sink had already received; at least once allows them)", s.Name, i+1, rd.Duplicates))
			}
		}
	}
	p("\n")
	for _, s := range r.Scenarios {
		p("- `%s`: %s\n", s.Name, s.Title)
	}
	if len(r.Goals) > 0 {
		p("\nGoals:\n\n")
		for _, g := range r.Goals {
			p("- **%s** (issue %d): %s (%s)\n", g.Status, g.Issue, g.Text, g.Detail)
		}
	}
	if len(notes) > 0 {
		p("\nNotes:\n\n")
		for _, n := range notes {
			p("- %s\n", n)
		}
	}
}

func rpsCell(s Spread) string {
	return fmt.Sprintf("%s<br>(%s-%s)", kfmt(s.Median), kfmt(s.Min), kfmt(s.Max))
}

func kfmt(v float64) string {
	if v >= 10000 {
		return fmt.Sprintf("%.1fk", v/1000)
	}
	return fmt.Sprintf("%.0f", v)
}

func msCell(s Spread) string {
	return fmt.Sprintf("%s<br>(%s-%s)", msfmt(s.Median), msfmt(s.Min), msfmt(s.Max))
}

// msfmt keeps three significant digits, the histogram's precision.
func msfmt(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func countCell(s Spread) string {
	if s.Max == 0 {
		return "0"
	}
	return fmt.Sprintf("%.0f<br>(%.0f-%.0f)", s.Median, s.Min, s.Max)
}

func numCell(s Spread, prec int) string {
	if s.Max == 0 {
		return "-"
	}
	return fmt.Sprintf("%.*f<br>(%.*f-%.*f)", prec, s.Median, prec, s.Min, prec, s.Max)
}

func mibCell(s Spread) string {
	if s.Max == 0 {
		return "-"
	}
	m := func(v float64) float64 { return math.Round(v / (1 << 20)) }
	return fmt.Sprintf("%.0f<br>(%.0f-%.0f)", m(s.Median), m(s.Min), m(s.Max))
}

// undeliveredCell is the (delivered) row's errors: losses and duplicates
// apart, since a duplicate could otherwise hide a loss.
func undeliveredCell(s Summary) string {
	var lost, dups int64
	for _, r := range s.Rounds {
		lost, dups = max(lost, r.Undelivered), max(dups, r.Duplicates)
	}
	if lost == 0 && dups == 0 {
		return "0 undelivered, 0 duplicated"
	}
	return fmt.Sprintf("%d undelivered, %d duplicated (worst round)", lost, dups)
}

func non2xx(st map[int]int64) string {
	var parts []string
	for code, n := range st {
		if code < 200 || code >= 300 {
			parts = append(parts, fmt.Sprintf("%d x%d", code, n))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return ", first: " + e
}

// pairedNote compares a scenario with its --baseline twin round by round:
// the two ran back to back in each round, so a slow minute of a shared
// machine hits both, and the ratio of a round moves less than either
// median does. "" when no round has both.
func pairedNote(s, base Summary) string {
	var rps, cpu []float64
	for _, a := range s.Rounds {
		for _, b := range base.Rounds {
			if a.Index == b.Index && a.RPS > 0 && b.RPS > 0 && a.CPUPerRequest() > 0 && b.CPUPerRequest() > 0 {
				rps = append(rps, a.RPS/b.RPS)
				cpu = append(cpu, a.CPUPerRequest()/b.CPUPerRequest())
			}
		}
	}
	if len(rps) == 0 {
		return ""
	}
	list := func(vs []float64) string {
		parts := make([]string, len(vs))
		for i, v := range vs {
			parts[i] = fmt.Sprintf("%.2fx", v)
		}
		return strings.Join(parts, ", ")
	}
	return fmt.Sprintf("`%s` against `%s`, round by round: req/s %s (median %.2fx); CPU per request %s (median %.2fx)",
		s.Name, base.Name, list(rps), spreadOf(rps).Median, list(cpu), spreadOf(cpu).Median)
}
