package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/internal/server"
)

const tryHelp = `Usage: hookgate try --config FILE --route NAME --payload FILE

Run one payload through a route's transforms, exactly as the gateway would,
and print each delivery it would make as one JSON line with the keys target,
method, url, headers, body and delay; or {"dropped": "reason"} when a plugin
drops it. Nothing is sent. Secret values (auth, tokens, ${env:...} header and
query values) print redacted; signature headers print as computed when sent.
A plugin error exits 1 with the plugin's message. Use it while writing a
plugin or a route, as a "test send" that sends nothing.
`

func runTry(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("try", tryHelp, stdout)
	path := fs.String("config", "config.toml", "config file")
	routeName := fs.String("route", "", "name of the route to try (required)")
	payloadPath := fs.String("payload", "", "file holding the request body to try (required)")
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	if *routeName == "" || *payloadPath == "" {
		fmt.Fprintln(stderr, "hookgate try: --route and --payload are required\nRun 'hookgate try --help' for the flags.")
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		printConfigError(stderr, err)
		return 1
	}
	rc := cfg.Route(*routeName)
	if rc == nil {
		var names []string
		for _, r := range cfg.Routes {
			names = append(names, r.Name)
		}
		fmt.Fprintf(stderr, "hookgate try: no route named %q in %s; the routes are: %s\n", *routeName, cfg.Path, strings.Join(names, ", "))
		return 1
	}
	payload, err := os.ReadFile(*payloadPath)
	if err != nil {
		fmt.Fprintf(stderr, "hookgate try: cannot read the payload: %v\n", err)
		return 1
	}
	if rc.JSON && !json.Valid(payload) {
		fmt.Fprintf(stderr, "hookgate try: %s is not valid JSON; route %q expects JSON and would answer 400\n", *payloadPath, rc.Name)
		return 1
	}

	headers := []delivery.KV{{Key: []byte("Content-Type"), Value: []byte("application/json")}}
	res, err := server.Try(ctx, cfg, rc, headers, payload, server.NewLogger(cfg.Log, stderr))
	if err != nil {
		fmt.Fprintf(stderr, "hookgate try: %v\n", err)
		return 1
	}

	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	if res.Dropped != nil {
		enc.Encode(map[string]string{"dropped": *res.Dropped})
		return 0
	}
	if res.Response != nil {
		fmt.Fprintf(stderr, "hookgate try: the sender would get status %d with body %q\n", res.Response.Status, res.Response.Body)
	}
	for _, d := range res.Deliveries {
		if err := enc.Encode(d); err != nil {
			fmt.Fprintf(stderr, "hookgate try: %v\n", err)
			return 1
		}
	}
	return 0
}
