package main

import (
	"context"
	"fmt"
	"io"
)

const replayHelp = `Usage: hookgate replay [flags]

Replay dead-lettered deliveries: send them again to their targets, one by
one or in bulk for a target or a route. Dead letters arrive with the durable
queue; until then this command has nothing to replay.
`

// runReplay is a placeholder until the durable queue lands; the delivery
// engineer replaces this file.
func runReplay(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("replay", replayHelp, stdout)
	fs.String("config", "config.toml", "config file of the gateway whose dead letters to replay")
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	fmt.Fprintln(stderr, "hookgate replay: not available yet: dead letters and replay arrive with the durable queue (async routes)")
	return 2
}
