// Command hookgate is the webhook gateway: it serves the routes of a
// config file, checks configs, tries payloads against a route's plugins,
// and runs a capture sink for testing.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/hookgate/hookgate/gateway/config"
)

// version is set at link time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

const usage = `Usage: hookgate <command> [flags]

hookgate receives webhooks, runs each route's WebAssembly transforms over
them, and delivers the result to your systems.

Commands:
  serve     run the gateway on a config file
  check     validate a config file and print a one-line summary
  try       run one payload through a route's transforms and print the
            deliveries it would make, sending nothing
  replay    replay dead-lettered deliveries
  sink      run a capture server that prints every request it receives
  version   print the version

Run 'hookgate <command> --help' for the flags of a command.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole program minus os.Exit, so tests call it in-process.
func run(args []string, stdout, stderr io.Writer) int {
	return runContext(context.Background(), args, stdout, stderr)
}

// runContext is run with a context whose end stops a long-running command
// (serve) as SIGTERM would.
func runContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, stdout, stderr)
	case "check":
		return runCheck(rest, stdout, stderr)
	case "try":
		return runTry(ctx, rest, stdout, stderr)
	case "replay":
		return runReplay(ctx, rest, stdout, stderr)
	case "sink":
		return runSink(rest, stdout, stderr)
	case "version":
		return runVersion(rest, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "hookgate: unknown command %q\n\n%s", cmd, usage)
	return 2
}

// newFlags makes a subcommand's flag set whose --help prints help (a
// description and the flags) on stdout and whose errors go to stderr with a
// pointer to --help.
func newFlags(name, help string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprint(out, help)
		fmt.Fprintln(out, "\nFlags:")
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args; done is true when the command should exit now
// with code (after --help, or a bad flag).
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (code int, done bool) {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		return 0, true
	case err != nil:
		fmt.Fprintf(stderr, "hookgate %s: %v\nRun 'hookgate %s --help' for the flags.\n", fs.Name(), err, fs.Name())
		return 2, true
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "hookgate %s: unexpected argument %q\nRun 'hookgate %s --help' for the flags.\n", fs.Name(), fs.Arg(0), fs.Name())
		return 2, true
	}
	return 0, false
}

const checkHelp = `Usage: hookgate check --config FILE

Validate a config file without starting anything: TOML syntax, unknown keys,
durations, sizes and URLs, target and plugin names, duplicate routes, and
every ${env:NAME} reference. Prints a one-line summary and exits 0 when the
config is valid, with any warnings (things that work but deserve a look,
such as a secret written in the file) on stderr, one per line; otherwise
prints every problem on stderr, one per line, and exits 1.
`

func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("check", checkHelp, stdout)
	path := fs.String("config", "config.toml", "config file to check")
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	cfg, err := config.Load(*path)
	if err != nil {
		printConfigError(stderr, err)
		return 1
	}
	fmt.Fprintln(stdout, cfg.Summary())
	// Warnings do not fail the check (the config loads as it is), but
	// they are why an operator runs it: print every one.
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	if n := len(cfg.Warnings); n > 0 {
		fmt.Fprintf(stderr, "%s: %d warning(s); the config is valid and loads as it is\n", *path, n)
	}
	return 0
}

// printConfigError prints every problem of a config error, one per line.
func printConfigError(w io.Writer, err error) {
	var ce *config.Error
	if errors.As(err, &ce) {
		fmt.Fprintln(w, ce.Error())
		fmt.Fprintf(w, "%s: %d problem(s); fix them and run 'hookgate check --config %s' again\n", ce.Path, len(ce.Problems), ce.Path)
		return
	}
	fmt.Fprintf(w, "hookgate: %v\n", err)
}

const versionHelp = `Usage: hookgate version

Print hookgate's version, the Go version it was built with, and the VCS
commit when the build recorded one.
`

func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("version", versionHelp, stdout)
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	v, commit, modified := version, "unknown", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if modified {
		commit += " (modified)"
	}
	fmt.Fprintf(stdout, "hookgate %s\ngo %s %s/%s\ncommit %s\n", v, strings.TrimPrefix(runtime.Version(), "go"), runtime.GOOS, runtime.GOARCH, commit)
	return 0
}
