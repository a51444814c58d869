package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/hookgate/hookgate/internal/sink"
)

const sinkUsage = `Usage: hookgate sink [flags]

Run a capture server: a stand-in target that answers every request and
prints it on stdout as one JSON object per line, with the keys method, path,
query, headers and body. Point a target's url at it to watch deliveries.

The first line on stderr is "hookgate sink: listening on ADDR", so a script
that passes --listen 127.0.0.1:0 can learn the port. SIGINT or SIGTERM stops
it (exit 0) after a summary line on stderr.

Flags:
  --listen ADDR         address to listen on (default 127.0.0.1:9000)
  --status N            status of every answer (default 200)
  --statuses LIST       statuses answered in order first, e.g. 503,503,200
                        to make a sender retry; then --status
  --delay DURATION      wait before answering, e.g. 2s (a slow target)
  --body TEXT           answer body (default {"ok":true})
  --retry-after VALUE   Retry-After header on every answer, e.g. 5
  --quiet               print nothing per request, only the summary
  --help                show this help

Example:
  hookgate sink --listen 127.0.0.1:9000 --statuses 503,503
`

// runSink is `hookgate sink`. It returns the process exit code: 0 after a
// signal or --help, 1 when the sink cannot start, 2 for bad flags.
func runSink(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sink", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are printed below, with a pointer to --help
	listen := fs.String("listen", "127.0.0.1:9000", "")
	status := fs.Int("status", 200, "")
	statuses := fs.String("statuses", "", "")
	delay := fs.Duration("delay", 0, "")
	body := fs.String("body", sink.DefaultBody, "")
	retryAfter := fs.String("retry-after", "", "")
	quiet := fs.Bool("quiet", false, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, sinkUsage)
			return 0
		}
		fmt.Fprintf(stderr, "hookgate sink: %v\nRun 'hookgate sink --help' for the flags.\n", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "hookgate sink: unexpected argument %q\nRun 'hookgate sink --help' for the flags.\n", fs.Arg(0))
		return 2
	}
	opts := sink.Options{Status: *status, Delay: *delay, Body: *body, RetryAfter: *retryAfter}
	var err error
	if opts.Statuses, err = sinkParseStatuses(*statuses); err != nil {
		fmt.Fprintf(stderr, "hookgate sink: --statuses: %v\nGive a comma-separated list of HTTP statuses, e.g. --statuses 503,503,200.\n", err)
		return 2
	}
	if *status < 100 || *status > 999 {
		fmt.Fprintf(stderr, "hookgate sink: --status %d is not an HTTP status\n", *status)
		return 2
	}
	if *delay < 0 {
		fmt.Fprintf(stderr, "hookgate sink: --delay %v is negative\n", *delay)
		return 2
	}
	if *quiet {
		opts.Discard = true
	} else {
		opts.Out = stdout
	}

	// Catch signals before announcing the address: whoever reads it may
	// signal right away.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	s, err := sink.Start(*listen, opts)
	if err != nil {
		fmt.Fprintf(stderr, "hookgate sink: %v\nIs another process using %s? Pick another address with --listen.\n", err, *listen)
		return 1
	}
	fmt.Fprintf(stderr, "hookgate sink: listening on %s\n", s.Addr())
	<-ctx.Done()
	err = s.Close()
	fmt.Fprintf(stderr, "hookgate sink: received %d requests on %d connections\n", s.Count(), s.Conns())
	if err != nil {
		fmt.Fprintf(stderr, "hookgate sink: %v\n", err)
	}
	return 0
}

// sinkParseStatuses parses "503,503,200"; "" gives none.
func sinkParseStatuses(list string) ([]int, error) {
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}
	var out []int
	for part := range strings.SplitSeq(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < 100 || n > 999 {
			return nil, fmt.Errorf("%q is not an HTTP status", part)
		}
		out = append(out, n)
	}
	return out, nil
}
