package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hookgate/hookgate/gateway/admin"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/queue"
	"github.com/hookgate/hookgate/internal/server"
)

const replayHelp = `Usage: hookgate replay --config FILE (--id ID | --target T | --route R | --all) [flags]

Replay dead letters: move deliveries that were given up on back into the
queue, attempts cleared, so they are sent again to their targets. Say which
ones: one delivery by its id (as listed by GET /admin/dead), every dead
letter of a target and/or a route, or --all for every one. Nothing is
replayed without one of these, so nobody replays everything by accident.

When the gateway is stopped, replay opens the queue directory of the config
(queue.path) itself; the replayed deliveries go out when the gateway starts.
When the gateway is running it holds the queue, so replay asks it through
its admin API (admin.listen of the config, or --admin), sending the admin
token (admin.token of the config, or the variable named by --token-env),
and the deliveries go out at once.

A bulk replay shows a progress bar on stderr (plain lines when stderr is
not a terminal) and prints a summary on stdout. Exit status: 0 when done,
1 when the replay failed, 2 for bad flags.
`

// adminBatch is how many dead letters one admin request replays: small
// enough for a timely progress bar and short requests, big enough to keep
// the round trips few.
const adminBatch = 500

type replayFlags struct {
	config, target, route, id, admin, tokenEnv string
	all                                        bool
}

func (f *replayFlags) filter() queue.Filter {
	return queue.Filter{Target: f.target, Route: f.route}
}

// what describes the selection for messages: `target "crm"`, `every dead letter`.
func (f *replayFlags) what() string {
	var parts []string
	if f.target != "" {
		parts = append(parts, "target "+strconv.Quote(f.target))
	}
	if f.route != "" {
		parts = append(parts, "route "+strconv.Quote(f.route))
	}
	if len(parts) == 0 {
		return "every target and route"
	}
	return strings.Join(parts, ", ")
}

func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("replay", replayHelp, stdout)
	var f replayFlags
	fs.StringVar(&f.config, "config", "config.toml", "config file of the gateway whose dead letters to replay")
	fs.StringVar(&f.id, "id", "", "replay the one dead letter with this delivery id")
	fs.StringVar(&f.target, "target", "", "replay the dead letters of this target")
	fs.StringVar(&f.route, "route", "", "replay the dead letters of this route (with --target: of both)")
	fs.BoolVar(&f.all, "all", false, "replay every dead letter")
	fs.StringVar(&f.admin, "admin", "", "admin API of the running gateway, e.g. http://127.0.0.1:8081 (default: from admin.listen; setting it skips opening the queue)")
	fs.StringVar(&f.tokenEnv, "token-env", "", "environment variable holding the admin token (default: admin.token of the config)")
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	switch {
	case f.id == "" && f.target == "" && f.route == "" && !f.all:
		fmt.Fprintln(stderr, "hookgate replay: say which dead letters to replay: --id ID (one), --target NAME, --route NAME, or --all (every one)\nRun 'hookgate replay --help' for the flags.")
		return 2
	case f.id != "" && (f.target != "" || f.route != "" || f.all):
		fmt.Fprintln(stderr, "hookgate replay: --id replays one dead letter; leave out --target, --route and --all, or drop --id")
		return 2
	case f.all && (f.target != "" || f.route != ""):
		fmt.Fprintln(stderr, "hookgate replay: --all replays every dead letter; leave out --target and --route, or drop --all")
		return 2
	}
	// Plugins are never loaded here: a wasm file that moved must not stop
	// a replay.
	cfg, err := config.LoadWith(f.config, config.Options{SkipWasmCheck: true})
	if err != nil {
		printConfigError(stderr, err)
		return 1
	}
	bar := newProgress(stderr)
	if f.admin == "" {
		code, locked := replayOffline(ctx, cfg, &f, stdout, stderr, bar)
		if !locked {
			return code
		}
		fmt.Fprintf(stderr, "hookgate replay: the gateway is running (it holds %s); replaying through its admin API\n", cfg.Queue.Path)
	}
	return replayOnline(ctx, cfg, &f, stdout, stderr, bar)
}

// replayOffline replays straight in the queue directory. locked is true
// when a running gateway holds it, so the caller goes through the admin API.
//
// With backend = "nats" the dead letters are in the shared stream, which
// the running gateways never lock: replay goes there straight, and the
// gateways deliver what it puts back.
func replayOffline(ctx context.Context, cfg *config.Config, f *replayFlags, stdout, stderr io.Writer, bar *progress) (code int, locked bool) {
	nats := cfg.Queue.Backend == config.QueueBackendNATS
	if _, err := os.Stat(cfg.Queue.Path); !nats && errors.Is(err, os.ErrNotExist) {
		// queue.Open would create an empty queue: say what is wrong instead.
		fmt.Fprintf(stderr, "hookgate replay: there is no queue at %s (queue.path of %s), so no dead letters either; is this the config the gateway serves?\n", cfg.Queue.Path, cfg.Path)
		return 1, false
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, err := server.OpenQueue(ctx, cfg, log, nil, nil, true)
	if errors.Is(err, queue.ErrLocked) {
		return 0, true
	}
	if err != nil {
		fmt.Fprintf(stderr, "hookgate replay: %v\n", err)
		return 1, false
	}
	defer func() {
		if err := store.Close(); err != nil {
			fmt.Fprintf(stderr, "hookgate replay: closing the queue: %v\n", err)
			code = 1
		}
	}()
	later := "they go out when the gateway starts"
	if nats {
		later = "the gateways on the stream send them"
	}
	if f.id != "" {
		if err := store.Replay(f.id); err != nil {
			if errors.Is(err, queue.ErrNotFound) {
				fmt.Fprintf(stderr, "hookgate replay: no dead letter has delivery id %q; list them with GET /admin/dead while the gateway runs\n", f.id)
				return 1, false
			}
			fmt.Fprintf(stderr, "hookgate replay: %v\n", err)
			return 1, false
		}
		one := "it goes out when the gateway starts"
		if nats {
			one = "the gateways on the stream send it"
		}
		fmt.Fprintf(stdout, "replayed dead letter %s; %s\n", f.id, one)
		return 0, false
	}
	filter := f.filter()
	total, err := store.DeadCount(filter)
	if err != nil {
		fmt.Fprintf(stderr, "hookgate replay: %v\n", err)
		return 1, false
	}
	if total == 0 {
		fmt.Fprintf(stdout, "nothing to replay: no dead letters for %s%s\n", f.what(), unknownNames(cfg, f))
		return 0, false
	}
	bar.update(0, total)
	n, err := store.ReplayAll(filter, 0, func(done int) { bar.update(done, total) })
	bar.finish(n, total)
	if err != nil {
		fmt.Fprintf(stderr, "hookgate replay: %v; %d replayed before the error, run the same command again for the rest\n", err, n)
		return 1, false
	}
	fmt.Fprintf(stdout, "replayed %d dead letters for %s; %s\n", n, f.what(), later)
	return 0, false
}

// unknownNames explains an empty selection whose names the config does
// not know (a typo, most likely).
func unknownNames(cfg *config.Config, f *replayFlags) string {
	var notes []string
	if f.target != "" {
		names := make([]string, 0, len(cfg.Targets))
		known := false
		for _, t := range cfg.Targets {
			names = append(names, t.Name)
			known = known || t.Name == f.target
		}
		if !known {
			sort.Strings(names)
			notes = append(notes, fmt.Sprintf("the config has no target %q (targets: %s)", f.target, strings.Join(names, ", ")))
		}
	}
	if f.route != "" {
		names := make([]string, 0, len(cfg.Routes))
		known := false
		for _, r := range cfg.Routes {
			names = append(names, r.Name)
			known = known || r.Name == f.route
		}
		if !known {
			sort.Strings(names)
			notes = append(notes, fmt.Sprintf("the config has no route %q (routes: %s)", f.route, strings.Join(names, ", ")))
		}
	}
	if len(notes) == 0 {
		return ""
	}
	return "; " + strings.Join(notes, "; ")
}

// adminClient talks to a running gateway's admin API.
type adminClient struct {
	base  string // "http://127.0.0.1:8081"
	token string
	http  *http.Client
}

// adminError is an answer other than 200 from the admin API.
type adminError struct {
	Status  int
	Code    string
	Message string
}

func (e *adminError) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("admin API answered %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("admin API answered %d", e.Status)
}

func (c *adminClient) post(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, nil)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("reading the admin API's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		ae := &adminError{Status: resp.StatusCode}
		var eb struct {
			Error admin.Error `json:"error"` // the one error shape of the admin API
		}
		if json.Unmarshal(body, &eb) == nil {
			ae.Code, ae.Message = eb.Error.Code, eb.Error.Message
		}
		return ae
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("the admin API answered %q, not the JSON expected: %w", truncate(body, 200), err)
	}
	return nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// adminBase turns admin.listen into a URL a client can dial: a wildcard
// host (":8081", "0.0.0.0:8081") means this machine.
func adminBase(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("admin.listen %q: %w", listen, err)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// replayOnline replays through the admin API of the running gateway.
func replayOnline(ctx context.Context, cfg *config.Config, f *replayFlags, stdout, stderr io.Writer, bar *progress) int {
	c := &adminClient{http: &http.Client{Timeout: 2 * time.Minute}}
	switch {
	case f.admin != "":
		c.base = strings.TrimSuffix(f.admin, "/")
		if !strings.Contains(c.base, "://") {
			c.base = "http://" + c.base
		}
	case cfg.Admin.Listen == "":
		fmt.Fprintf(stderr, "hookgate replay: the gateway holds the queue (%s) and %s has no admin.listen, so there is no admin API to replay through; stop the gateway and run this again, or set admin.listen and restart it\n", cfg.Queue.Path, cfg.Path)
		return 1
	default:
		base, err := adminBase(cfg.Admin.Listen)
		if err != nil {
			fmt.Fprintf(stderr, "hookgate replay: %v; fix admin.listen in %s or pass --admin URL\n", err, cfg.Path)
			return 1
		}
		c.base = base
	}
	c.token = cfg.Admin.Token.Reveal()
	if f.tokenEnv != "" {
		c.token = os.Getenv(f.tokenEnv)
		if c.token == "" {
			fmt.Fprintf(stderr, "hookgate replay: --token-env %s: the variable is empty or not set; export it with the gateway's admin token\n", f.tokenEnv)
			return 1
		}
	}
	fail := func(err error) int {
		var ae *adminError
		switch {
		case errors.As(err, &ae) && ae.Status == http.StatusUnauthorized:
			fmt.Fprintf(stderr, "hookgate replay: %s refused the admin token (%v); pass --token-env NAME with the variable that holds the gateway's admin.token\n", c.base, err)
		case errors.As(err, &ae):
			fmt.Fprintf(stderr, "hookgate replay: %s: %v\n", c.base, err)
		default:
			fmt.Fprintf(stderr, "hookgate replay: cannot reach the admin API at %s: %v; is the gateway running with admin.listen, or pass --admin URL\n", c.base, err)
		}
		return 1
	}
	if f.id != "" {
		var out struct {
			Replayed int `json:"replayed"`
		}
		err := c.post(ctx, "/admin/dead/"+url.PathEscape(f.id)+"/replay", &out)
		var ae *adminError
		if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
			fmt.Fprintf(stderr, "hookgate replay: no dead letter has delivery id %q; list them with GET %s/admin/dead\n", f.id, c.base)
			return 1
		}
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "replayed dead letter %s; the gateway is sending it\n", f.id)
		return 0
	}
	q := url.Values{}
	if f.target != "" {
		q.Set("target", f.target)
	}
	if f.route != "" {
		q.Set("route", f.route)
	}
	if f.all {
		q.Set("all", "true")
	}
	// total is fixed by the first answer: replayed deliveries that fail
	// again come back as dead letters while we loop, and must not keep the
	// loop going for ever.
	done, total := 0, -1
	for total < 0 || done < total {
		limit := adminBatch
		if total >= 0 && total-done < limit {
			limit = total - done
		}
		q.Set("limit", strconv.Itoa(limit))
		var out struct {
			Replayed  int `json:"replayed"`
			Remaining int `json:"remaining"`
		}
		if err := c.post(ctx, "/admin/dead/replay?"+q.Encode(), &out); err != nil {
			bar.finish(done, max(total, done))
			if done > 0 {
				fmt.Fprintf(stderr, "hookgate replay: %d replayed before the error; run the same command again for the rest\n", done)
			}
			return fail(err)
		}
		done += out.Replayed
		if total < 0 {
			total = out.Replayed + out.Remaining
			if total == 0 {
				fmt.Fprintf(stdout, "nothing to replay: no dead letters for %s%s\n", f.what(), unknownNames(cfg, f))
				return 0
			}
		}
		bar.update(done, total)
		if out.Remaining == 0 || out.Replayed == 0 {
			break
		}
	}
	bar.finish(done, total)
	fmt.Fprintf(stdout, "replayed %d dead letters for %s; the gateway is sending them\n", done, f.what())
	return 0
}

// progress draws a bulk replay's progress on stderr: a bar redrawn in
// place on a terminal, otherwise a plain line now and then, so logs stay
// readable.
type progress struct {
	w        io.Writer
	terminal bool
	last     time.Time
	drawn    [2]int // done, total last drawn; {-1, -1} before the first
}

const barWidth = 30

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, drawn: [2]int{-1, -1}}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.terminal = true
		}
	}
	return p
}

func (p *progress) update(done, total int) {
	every := time.Second
	if p.terminal {
		every = 100 * time.Millisecond
	}
	if now := time.Now(); now.Sub(p.last) >= every {
		p.last = now
		p.draw(done, total)
	}
}

// finish draws the final state; on a terminal it ends the bar's line.
func (p *progress) finish(done, total int) {
	p.draw(done, total)
	if p.terminal {
		fmt.Fprintln(p.w)
	}
}

func (p *progress) draw(done, total int) {
	if p.drawn == [2]int{done, total} {
		return
	}
	p.drawn = [2]int{done, total}
	if !p.terminal {
		fmt.Fprintf(p.w, "%d/%d replayed\n", done, total)
		return
	}
	fmt.Fprintf(p.w, "\r%s %d/%d replayed", bar(done, total), done, total)
}

// bar renders [#####.....] for done of total.
func bar(done, total int) string {
	filled := barWidth
	if total > 0 && done < total {
		filled = done * barWidth / total
	}
	return "[" + strings.Repeat("#", filled) + strings.Repeat(".", barWidth-filled) + "]"
}
