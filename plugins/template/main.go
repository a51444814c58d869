// Command template is hookgate's stock template plugin (seeds 002 and
// 003): it renders an outgoing body, query parameters and headers from
// templates with ${json.path} variables, ${path|default} defaults and
// typed params. See README.md for the exact rules.
package main

import (
	"fmt"
	"strconv"
	"unsafe"

	"github.com/hookgate/hookgate/plugins/sdk"
	"github.com/hookgate/hookgate/plugins/sdk/jsonw"
)

func init() { sdk.Handle(handle) }

func main() {}

// Reused by every call: one instance runs one call at a time.
var (
	out    []byte
	values []value
	found  []sdk.Result // the value of each of config.paths in the body
	digits []byte       // integer params' digits, values[i].text views into it
)

// value is a param's value for this event.
type value struct {
	text   string // text params; integers as digits
	quoted bool   // text: a string when inserted unquoted into JSON
	empty  bool   // no value and no default (text params only)
}

// integerValue is n as a value, its digits appended to digits rather than
// allocated (strconv.FormatInt allocates for n >= 100). The view stays
// valid for the call: appends only ever add bytes after it, and a grown
// array leaves the old one, which the view keeps, unchanged.
func integerValue(n int64) value {
	at := len(digits)
	digits = strconv.AppendInt(digits, n, 10)
	return value{text: view(digits[at:])}
}

func handle(e *sdk.Event) error {
	c, err := sdk.LoadConfig(e, parseConfig)
	if err != nil {
		return err
	}
	// Every path the templates read, in one host call.
	found = sdk.GetManyInto(found, e.Body(), c.paths...)
	if err := resolveParams(c); err != nil {
		return err
	}
	if c.target != "" {
		d := e.Emit(c.target)
		if c.method != "" {
			d.SetMethod(c.method)
		}
		if c.hasBody {
			out = render(out[:0], c.body, c.json)
			d.SetBody(out).SetHeader("Content-Type", contentType(c))
		}
		for _, q := range c.query {
			out = render(out[:0], q.t, false)
			d.SetQuery(q.name, view(out))
		}
		for _, h := range c.headers {
			out = render(out[:0], h.t, false)
			d.SetHeader(h.name, view(out))
		}
		return nil
	}
	if c.method != "" {
		e.SetMethod(c.method)
	}
	for _, q := range c.query {
		out = render(out[:0], q.t, false)
		e.SetQuery(q.name, view(out))
	}
	for _, h := range c.headers {
		out = render(out[:0], h.t, false)
		e.SetHeader(h.name, view(out))
	}
	if c.hasBody {
		// Last: the variables above read the original body.
		out = render(out[:0], c.body, c.json)
		e.SetBody(out)
		e.SetHeader("Content-Type", contentType(c))
	}
	return nil
}

// view is b as a string without a copy. Only for the SDK's setters: the
// host copies the value before they return, so reusing out afterwards
// changes nothing the host keeps. A string(out) per header or query
// parameter was the plugin's only allocation per call, and each one
// costs the guest's allocator and, in time, its collector.
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func contentType(c *config) string {
	if c.json {
		return "application/json"
	}
	return "text/plain; charset=utf-8"
}

// resolveParams reads each declared param from the body (or its default).
func resolveParams(c *config) error {
	values, digits = values[:0], digits[:0]
	for _, p := range c.params {
		v := found[p.at]
		present := v.Exists() && v.Type != sdk.Null && !(v.Type == sdk.String && v.Str == "")
		switch {
		case !present && p.integer && p.hasDef:
			values = append(values, integerValue(p.defNum))
		case !present && p.integer:
			return fmt.Errorf("template: param %s: no value at %s and no default", p.name, p.path)
		case !present:
			values = append(values, value{text: p.def, quoted: true, empty: !p.hasDef})
		case p.integer:
			n, ok := integer(v)
			if !ok {
				return fmt.Errorf("template: param %s: value %s at %s is not an integer", p.name, v.Raw, p.path)
			}
			values = append(values, integerValue(n))
		case v.Type == sdk.String:
			values = append(values, value{text: v.Str, quoted: true})
		default:
			values = append(values, value{text: v.Raw, quoted: true})
		}
	}
	return nil
}

// render appends t with its variables filled from the body (found) and the
// params. json selects JSON insertion (see README.md, "How values are
// inserted").
func render(dst []byte, t tmpl, json bool) []byte {
	for i := range t {
		s := &t[i]
		if !s.isVar {
			dst = append(dst, s.lit...)
			continue
		}
		if s.param >= 0 {
			v := values[s.param]
			if v.empty && s.hasDef {
				dst = insertDefault(dst, s, json)
				continue
			}
			dst = insertText(dst, v.text, v.quoted, s.quoted, json)
			continue
		}
		v := found[s.at]
		switch {
		case !v.Exists() || v.Type == sdk.Null || (v.Type == sdk.String && v.Str == ""):
			if s.hasDef {
				dst = insertDefault(dst, s, json)
			} else if json && !s.quoted {
				dst = append(dst, "null"...)
			}
		case v.Type == sdk.String:
			dst = insertText(dst, v.Str, true, s.quoted, json)
		default: // numbers, booleans, objects, arrays: their JSON text
			dst = insertText(dst, v.Raw, false, s.quoted, json)
		}
	}
	return dst
}

// insertText inserts text: as is outside JSON, escaped inside a JSON
// string, and outside one as a JSON string when isString, else raw JSON.
func insertText(dst []byte, text string, isString, inQuotes, json bool) []byte {
	switch {
	case !json:
		return append(dst, text...)
	case inQuotes:
		return jsonw.AppendEscaped(dst, text)
	case isString:
		return jsonw.AppendString(dst, text)
	}
	return append(dst, text...)
}

// insertDefault inserts an inline default. Outside quotes in a JSON body a
// default that is a JSON number, true, false or null goes in raw; any other
// text becomes a JSON string.
func insertDefault(dst []byte, s *segment, json bool) []byte {
	if json && !s.quoted {
		if s.defIsJSON {
			return append(dst, s.def...)
		}
		return jsonw.AppendString(dst, s.def)
	}
	return insertText(dst, s.def, true, s.quoted, json)
}
