// Package config loads hookgate's TOML configuration into a validated
// Config.
//
// Loading is four steps:
//
//  1. decode the TOML into a generic tree (syntax errors stop here);
//  2. read each section from the tree, converting durations, sizes and
//     `${env:NAME}` references and filling defaults (defaults.go);
//  3. check what spans sections: route targets and plugins exist, names
//     and paths are unique, wasm files exist;
//  4. return the Config, or one *Error listing every problem found.
//
// # Notes
//
// Relative paths (plugin wasm, queue path, cache dir) are resolved against
// the config file's directory, not the working directory.
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"
)

// Error is every problem found in one config file.
type Error struct {
	Path     string   // the config file
	Problems []string // one sentence each, naming the key and what to do
}

// Error lists every problem, one per line, each prefixed with the file.
func (e *Error) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Path)
		b.WriteString(": ")
		b.WriteString(p)
	}
	return b.String()
}

// Options changes how a config is parsed.
type Options struct {
	// Env looks up environment variables; nil means os.LookupEnv.
	Env func(string) (string, bool)
	// SkipWasmCheck accepts plugin wasm paths that do not exist yet, for
	// tests and tools that never load the plugins.
	SkipWasmCheck bool
}

// Load reads and validates the config file at path, taking `${env:NAME}`
// values from the process environment.
func Load(path string) (*Config, error) {
	return LoadWith(path, Options{})
}

// LoadWith is Load with options.
func LoadWith(path string, opts Options) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Path: path, Problems: []string{fmt.Sprintf("cannot read the config file: %v", cause(err))}}
	}
	return ParseWith(data, path, opts)
}

// Parse validates a config held in memory; path is used to resolve
// relative paths and in messages. env looks up `${env:NAME}` values (nil
// means the process environment).
func Parse(data []byte, path string, env func(string) (string, bool)) (*Config, error) {
	return ParseWith(data, path, Options{Env: env})
}

// ParseWith is Parse with options.
func ParseWith(data []byte, path string, opts Options) (*Config, error) {
	var tree map[string]any
	if _, err := toml.Decode(string(data), &tree); err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return nil, &Error{Path: path, Problems: []string{fmt.Sprintf("line %d: %s", perr.Position.Line, oneLine(perr.Message))}}
		}
		return nil, &Error{Path: path, Problems: []string{oneLine(err.Error())}}
	}
	p := &parser{env: opts.Env, dir: filepath.Dir(path)}
	if p.env == nil {
		p.env = os.LookupEnv
	}
	c := &Config{Path: path}
	top := p.table("", tree)
	c.Server = p.server(top.sub("server"))
	c.Admin = p.admin(top.sub("admin"), c.Server)
	c.Queue = p.queue(top.sub("queue"))
	c.Transforms = p.transforms(top.sub("transforms"))
	c.Log = p.log(top.sub("log"))
	for i, m := range top.list("target", "[[target]]") {
		if m != nil {
			c.Targets = append(c.Targets, p.target(i, m))
		}
	}
	for i, m := range top.list("plugin", "[[plugin]]") {
		if m != nil {
			c.Plugins = append(c.Plugins, p.plugin(i, m, !opts.SkipWasmCheck))
		}
	}
	for i, m := range top.list("route", "[[route]]") {
		if m != nil {
			c.Routes = append(c.Routes, p.route(i, m, c.Server.MaxBody))
		}
	}
	c.Operations = p.operations(top.sub("operations"), c.Targets)
	top.done()
	p.crossCheck(c)
	if len(p.problems) > 0 {
		// Values are quoted where they are printed; this is the backstop
		// that keeps `hookgate check` output one problem per line.
		for i := range p.problems {
			p.problems[i] = oneLine(p.problems[i])
		}
		return nil, &Error{Path: path, Problems: p.problems}
	}
	c.Warnings = p.warnings
	return c, nil
}

// Summary is the one line `hookgate check` prints for a valid config.
func (c *Config) Summary() string {
	return fmt.Sprintf("%s: ok: %s, %s, %s", c.Path,
		plural(len(c.Routes), "route"), plural(len(c.Targets), "target"), plural(len(c.Plugins), "plugin"))
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// Target returns the target named name, or nil.
func (c *Config) Target(name string) *Target {
	for i := range c.Targets {
		if c.Targets[i].Name == name {
			return &c.Targets[i]
		}
	}
	return nil
}

// Plugin returns the plugin named name, or nil.
func (c *Config) Plugin(name string) *Plugin {
	for i := range c.Plugins {
		if c.Plugins[i].Name == name {
			return &c.Plugins[i]
		}
	}
	return nil
}

// Route returns the route named name, or nil.
func (c *Config) Route(name string) *Route {
	for i := range c.Routes {
		if c.Routes[i].Name == name {
			return &c.Routes[i]
		}
	}
	return nil
}

// cause drops the path an *fs.PathError repeats, since messages already
// name the file.
func cause(err error) error {
	if inner := errors.Unwrap(err); inner != nil {
		return inner
	}
	return err
}

// oneLine escapes control characters (the TOML parser quotes what it
// found, newlines included) so each problem stays on one line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, strings.ReplaceAll(s, "\n", `\n`))
}

// resolve makes a relative path relative to the config file's directory.
func (p *parser) resolve(path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(p.dir, path)
}
