package config

import (
	"errors"
	"strings"
	"testing"
)

// TestPipeline: pipeline is off unless set, takes up to max_conns
// connections, and each mistake is one problem saying what to write.
func TestPipeline(t *testing.T) {
	const base = "[[target]]\nname = \"crm\"\nurl = \"http://127.0.0.1:9000/crm\"\nmax_conns = 16\n%s\n[[route]]\nname = \"r\"\npath = \"/hooks/r\"\ntargets = [\"crm\"]\n"
	parse := func(line string) (*Config, error) {
		return Parse([]byte(strings.Replace(base, "%s", line, 1)), "c.toml", mapEnv(nil))
	}
	for line, want := range map[string]int{"": 0, "pipeline = 0": 0, "pipeline = 1": 1, "pipeline = 16": 16} {
		c, err := parse(line)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if got := c.Target("crm").Pipeline; got != want {
			t.Errorf("%q: pipeline %d, want %d", line, got, want)
		}
	}
	for line, want := range map[string]string{
		"pipeline = 17":    `target "crm": pipeline: 17 connections is more than max_conns = 16`,
		"pipeline = -1":    "pipeline",
		"pipeline = \"8\"": "pipeline",
	} {
		_, err := parse(line)
		var ce *Error
		if !errors.As(err, &ce) || len(ce.Problems) != 1 || !strings.Contains(ce.Problems[0], want) {
			t.Errorf("%q: got %v, want one problem containing %q", line, err, want)
		}
	}
}
