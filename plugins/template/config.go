package main

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/hookgate/hookgate/plugins/sdk"
)

// config is a parsed, checked template configuration. Everything that can
// be wrong with it is found here, on the first event of the step, not when
// a particular event happens to reach a bad variable.
type config struct {
	body    tmpl
	hasBody bool
	json    bool // body_format "json" (default): values are JSON-escaped
	query   []named
	headers []named
	params  []param
	from    string // params_from: where param values are read in the body
	target  string // "" changes the event instead of emitting
	method  string
	paths   []string // every path params and variables read, looked up together per event
}

type named struct {
	name string
	t    tmpl
}

type param struct {
	name    string
	integer bool   // type "integer"; else "text"
	path    string // where its value is read in the body
	at      int    // index of path in config.paths
	def     string // default as text (digits for integers)
	defNum  int64
	hasDef  bool
}

// tmpl is a template split into literal text and variables.
type tmpl []segment

type segment struct {
	lit    string // literal text; used when !isVar
	isVar  bool
	path   string // JSON path into the body; used when param < 0
	at     int    // index of path in config.paths
	param  int    // index into config.params, or -1
	def    string // inline default, after '|'
	hasDef bool
	quoted bool // inside a JSON string of the body template

	defIsJSON bool // def is a JSON number, true, false or null
}

func parseConfig(raw []byte) (*config, error) {
	if !sdk.Valid(raw) {
		return nil, errors.New("template: config is not valid JSON")
	}
	c := &config{json: true}
	var err error
	sdk.Parse(raw).ForEach(func(k, v sdk.Result) bool {
		switch k.Str {
		case "body", "query", "headers", "params":
			// parsed below, once params are known
		case "body_format":
			switch v.Str {
			case "json":
			case "text":
				c.json = false
			default:
				err = fmt.Errorf("template: body_format is %s; want \"json\" or \"text\"", v.Raw)
			}
		case "params_from":
			c.from, err = str(v, "params_from")
		case "target":
			c.target, err = str(v, "target")
		case "method":
			c.method, err = str(v, "method")
		default:
			err = fmt.Errorf("template: unknown config key %q (want body, body_format, query, headers, params, params_from, target, method)", k.Str)
		}
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	if c.params, err = parseParams(sdk.Get(raw, "params"), c.from); err != nil {
		return nil, err
	}
	if b := sdk.Get(raw, "body"); b.Exists() {
		if b.Type != sdk.String {
			return nil, errors.New("template: body must be a string holding the template, e.g. \"{\\\"amount\\\": ${amount}}\"")
		}
		if c.body, err = c.parseTemplate(b.Str, c.json); err != nil {
			return nil, fmt.Errorf("template: body: %w", err)
		}
		c.hasBody = true
		if c.json {
			if err := checkJSON(c.body); err != nil {
				return nil, err
			}
		}
	}
	if c.query, err = c.parseNamed(sdk.Get(raw, "query"), "query"); err != nil {
		return nil, err
	}
	if c.headers, err = c.parseNamed(sdk.Get(raw, "headers"), "headers"); err != nil {
		return nil, err
	}
	if !c.hasBody && len(c.query) == 0 && len(c.headers) == 0 {
		return nil, errors.New("template: nothing to render: set body, query or headers")
	}
	c.indexPaths()
	return c, nil
}

// indexPaths collects the paths params and variables read, once each, so
// an event's values are found in one host call (sdk.GetManyInto).
func (c *config) indexPaths() {
	seen := map[string]int{}
	at := func(path string) int {
		i, ok := seen[path]
		if !ok {
			i = len(c.paths)
			seen[path] = i
			c.paths = append(c.paths, path)
		}
		return i
	}
	for i := range c.params {
		c.params[i].at = at(c.params[i].path)
	}
	vars := func(t tmpl) {
		for i := range t {
			if t[i].isVar && t[i].param < 0 {
				t[i].at = at(t[i].path)
			}
		}
	}
	vars(c.body)
	for _, q := range c.query {
		vars(q.t)
	}
	for _, h := range c.headers {
		vars(h.t)
	}
}

func str(v sdk.Result, key string) (string, error) {
	if v.Type != sdk.String {
		return "", fmt.Errorf("template: %s must be a string", key)
	}
	return v.Str, nil
}

func parseParams(v sdk.Result, from string) ([]param, error) {
	if !v.Exists() {
		return nil, nil
	}
	if !v.IsObject() {
		return nil, errors.New(`template: params must be an object, e.g. {"amount": {"type": "integer", "default": 100}}`)
	}
	var ps []param
	var err error
	v.ForEach(func(k, spec sdk.Result) bool {
		p := param{name: k.Str, path: k.Str}
		if from != "" {
			p.path = from + "." + k.Str
		}
		err = parseParam(&p, spec)
		ps = append(ps, p)
		return err == nil
	})
	return ps, err
}

func parseParam(p *param, spec sdk.Result) error {
	if p.name == "" || strings.ContainsAny(p.name, "${}|") {
		return fmt.Errorf("template: param %q: a name must be non-empty without $ { } |", p.name)
	}
	if !spec.IsObject() {
		return fmt.Errorf(`template: param %s: want {"type": "text"|"integer", "default": ...}`, p.name)
	}
	var err error
	spec.ForEach(func(k, v sdk.Result) bool {
		switch k.Str {
		case "type":
			switch v.Str {
			case "text":
			case "integer":
				p.integer = true
			default:
				err = fmt.Errorf("template: param %s: type is %s; want \"text\" or \"integer\"", p.name, v.Raw)
			}
		case "default":
		default:
			err = fmt.Errorf("template: param %s: unknown key %q (want type, default)", p.name, k.Str)
		}
		return err == nil
	})
	if err != nil {
		return err
	}
	if !spec.Get("type").Exists() {
		return fmt.Errorf("template: param %s: missing type (\"text\" or \"integer\")", p.name)
	}
	def := spec.Get("default")
	if !def.Exists() {
		return nil
	}
	p.hasDef = true
	if p.integer {
		n, ok := integer(def)
		if !ok || def.Type != sdk.Number {
			return fmt.Errorf("template: param %s: default %s is not an integer", p.name, def.Raw)
		}
		p.defNum = n
		return nil
	}
	if def.Type != sdk.String {
		return fmt.Errorf("template: param %s: default %s of a text param must be a string", p.name, def.Raw)
	}
	p.def = def.Str
	return nil
}

// integer reads a whole number from a JSON number or a string of digits.
func integer(v sdk.Result) (int64, bool) {
	switch v.Type {
	case sdk.Number:
		if v.Num != math.Trunc(v.Num) || math.Abs(v.Num) > 1<<53 {
			return 0, false
		}
		return v.Int(), true
	case sdk.String:
		s := strings.TrimSpace(v.Str)
		if s == "" {
			return 0, false
		}
		var n int64
		for i, c := range s {
			if i == 0 && c == '-' && len(s) > 1 {
				continue
			}
			if c < '0' || c > '9' || n > (math.MaxInt64-9)/10 {
				return 0, false
			}
			n = n*10 + int64(c-'0')
		}
		if s[0] == '-' {
			n = -n
		}
		return n, true
	}
	return 0, false
}

func (c *config) parseNamed(v sdk.Result, key string) ([]named, error) {
	if !v.Exists() {
		return nil, nil
	}
	if !v.IsObject() {
		return nil, fmt.Errorf(`template: %s must be an object of name: template, e.g. {"email": "${visitor.email}"}`, key)
	}
	var out []named
	var err error
	v.ForEach(func(k, t sdk.Result) bool {
		if t.Type != sdk.String {
			err = fmt.Errorf("template: %s.%s must be a string template", key, k.Str)
			return false
		}
		var tt tmpl
		if tt, err = c.parseTemplate(t.Str, false); err != nil {
			err = fmt.Errorf("template: %s.%s: %w", key, k.Str, err)
			return false
		}
		out = append(out, named{k.Str, tt})
		return true
	})
	return out, err
}

// parseTemplate splits s into literals and ${...} variables. With json set
// it tracks whether each variable sits inside a JSON string of the
// template, which decides how its value is inserted.
func (c *config) parseTemplate(s string, json bool) (tmpl, error) {
	var t tmpl
	var lit strings.Builder
	inString, escaped := false, false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch == '$' && strings.HasPrefix(s[i:], "$${") {
			lit.WriteString("${")
			i += 2
			continue
		}
		if ch == '$' && i+1 < len(s) && s[i+1] == '{' {
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return nil, fmt.Errorf("unterminated ${ at byte %d", i)
			}
			seg, err := c.parseVar(s[i+2 : i+2+end])
			if err != nil {
				return nil, err
			}
			seg.quoted = json && inString
			if lit.Len() > 0 {
				t = append(t, segment{lit: lit.String()})
				lit.Reset()
			}
			t = append(t, seg)
			i += 2 + end
			continue
		}
		lit.WriteByte(ch)
		if !json {
			continue
		}
		switch {
		case escaped:
			escaped = false
		case inString && ch == '\\':
			escaped = true
		case ch == '"':
			inString = !inString
		}
	}
	if lit.Len() > 0 {
		t = append(t, segment{lit: lit.String()})
	}
	return t, nil
}

func (c *config) parseVar(v string) (segment, error) {
	name, def, hasDef := strings.Cut(v, "|")
	name = strings.TrimSpace(name)
	seg := segment{isVar: true, param: -1, def: def, hasDef: hasDef}
	if d := sdk.Parse([]byte(def)); hasDef && sdk.Valid([]byte(def)) {
		seg.defIsJSON = d.Type == sdk.Number || d.Type == sdk.True || d.Type == sdk.False || d.Type == sdk.Null
	}
	explicit := strings.HasPrefix(name, "param:")
	if explicit {
		name = strings.TrimPrefix(name, "param:")
	}
	if name == "" {
		return seg, fmt.Errorf("empty variable ${%s}", v)
	}
	for i, p := range c.params {
		if p.name == name {
			seg.param = i
			return seg, nil
		}
	}
	if explicit {
		return seg, fmt.Errorf("${%s} refers to param %q, which params does not declare", v, name)
	}
	seg.path = name
	return seg, nil
}

// checkJSON renders the body template with placeholder values and checks
// the result is JSON, so a broken template fails at load, not per event.
func checkJSON(t tmpl) error {
	var b []byte
	for _, s := range t {
		switch {
		case !s.isVar:
			b = append(b, s.lit...)
		case !s.quoted:
			b = append(b, '0')
		}
	}
	if !sdk.Valid(b) {
		return fmt.Errorf("template: body is not a JSON template (with each unquoted ${...} read as a value): %s", b)
	}
	return nil
}
