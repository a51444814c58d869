// Command filter is hookgate's stock filter plugin: it keeps or drops an
// event by conditions on JSON paths of its body (seed 000's "filter
// rules"). See README.md.
package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hookgate/hookgate/plugins/sdk"
)

func init() { sdk.Handle(handle) }

func main() {}

type op int

const (
	opEq op = iota
	opNe
	opLt
	opLte
	opGt
	opGte
	opIn
	opExists
	opContains
)

var opNames = map[string]op{
	"eq": opEq, "ne": opNe, "lt": opLt, "lte": opLte, "gt": opGt, "gte": opGte,
	"in": opIn, "exists": opExists, "contains": opContains,
}

const opList = "eq, ne, lt, lte, gt, gte, in, exists, contains"

type rule struct {
	path  string
	op    op
	value sdk.Result // the config's value; its strings point into the config, which is never reused
	text  string     // "path op value", for drop reasons
	drop  string     // the drop reason naming this rule, built once
}

type config struct {
	any    bool // mode "any": keep when one rule holds; "all" (default): when every rule holds
	rules  []rule
	paths  []string // the rules' paths, looked up together
	reason string   // drop reason; "" means one naming the rule
}

func parseConfig(raw []byte) (*config, error) {
	if !sdk.Valid(raw) {
		return nil, fmt.Errorf("filter: config is not valid JSON")
	}
	c := &config{}
	switch m := sdk.Get(raw, "mode"); {
	case !m.Exists() || m.Str == "all":
	case m.Str == "any":
		c.any = true
	default:
		return nil, fmt.Errorf("filter: mode is %s; want \"all\" or \"any\"", m.Raw)
	}
	if r := sdk.Get(raw, "reason"); r.Exists() {
		if r.Type != sdk.String {
			return nil, fmt.Errorf("filter: reason must be a string")
		}
		c.reason = r.Str
	}
	rules := sdk.Get(raw, "rules")
	if !rules.IsArray() || len(rules.Array()) == 0 {
		return nil, fmt.Errorf("filter: rules must be a non-empty array of {\"path\", \"op\", \"value\"}")
	}
	var err error
	rules.ForEach(func(k, v sdk.Result) bool {
		i := len(c.rules)
		var r rule
		if r, err = parseRule(v); err != nil {
			err = fmt.Errorf("filter: rule %d: %w", i, err)
			return false
		}
		r.drop = "filter: rule " + strconv.Itoa(i) + " not met: " + r.text
		c.rules = append(c.rules, r)
		c.paths = append(c.paths, r.path)
		return true
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

func parseRule(v sdk.Result) (rule, error) {
	if !v.IsObject() {
		return rule{}, fmt.Errorf("want an object {\"path\", \"op\", \"value\"}, got %s", v.Raw)
	}
	p := v.Get("path")
	if p.Type != sdk.String || p.Str == "" {
		return rule{}, fmt.Errorf("missing path (a JSON path such as \"entry.fields.field_1\")")
	}
	name := v.Get("op")
	o, ok := opNames[name.Str]
	if name.Type != sdk.String || !ok {
		if !name.Exists() {
			return rule{}, fmt.Errorf("missing op (one of %s)", opList)
		}
		return rule{}, fmt.Errorf("unknown op %s (want one of %s)", name.Raw, opList)
	}
	r := rule{path: p.Str, op: o, value: v.Get("value")}
	switch {
	case o == opExists:
		if r.value.Exists() && !r.value.IsBool() {
			return rule{}, fmt.Errorf("exists takes value true or false (or none, meaning true)")
		}
	case !r.value.Exists():
		return rule{}, fmt.Errorf("op %s needs a value", name.Str)
	case o == opIn && !r.value.IsArray():
		return rule{}, fmt.Errorf("op in needs an array value, got %s", r.value.Raw)
	case (o == opLt || o == opLte || o == opGt || o == opGte) && r.value.Type != sdk.Number && r.value.Type != sdk.String:
		return rule{}, fmt.Errorf("op %s compares numbers or strings, got %s", name.Str, r.value.Raw)
	}
	r.text = p.Str + " " + name.Str
	if r.value.Exists() {
		r.text += " " + r.value.Raw
	}
	return r, nil
}

// values is reused by every call: one instance runs one call at a time.
var values []sdk.Result

func handle(e *sdk.Event) error {
	c, err := sdk.LoadConfig(e, parseConfig)
	if err != nil {
		return err
	}
	// Every rule's value in one host call: one pass over the body.
	values = sdk.GetManyInto(values, e.Body(), c.paths...)
	for i := range c.rules {
		r := &c.rules[i]
		ok := r.holds(values[i])
		if c.any && ok {
			return nil
		}
		if !c.any && !ok {
			if c.reason != "" {
				return e.Drop(c.reason)
			}
			return e.Drop(r.drop)
		}
	}
	if c.any {
		if c.reason != "" {
			return e.Drop(c.reason)
		}
		return e.Drop("filter: no rule met")
	}
	return nil
}

// holds reports whether the rule is true of the value found at its path.
// A missing value satisfies only ne and exists:false.
func (r *rule) holds(v sdk.Result) bool {
	switch r.op {
	case opExists:
		present := v.Exists() && v.Type != sdk.Null
		return present == (!r.value.Exists() || r.value.Bool())
	case opEq:
		return v.Exists() && equal(v, r.value)
	case opNe:
		return !v.Exists() || !equal(v, r.value)
	case opIn:
		found := false
		r.value.ForEach(func(_, x sdk.Result) bool {
			found = equal(v, x)
			return !found
		})
		return v.Exists() && found
	case opContains:
		switch {
		case v.Type == sdk.String && r.value.Type == sdk.String:
			return strings.Contains(v.Str, r.value.Str)
		case v.IsArray():
			found := false
			v.ForEach(func(_, x sdk.Result) bool {
				found = equal(x, r.value)
				return !found
			})
			return found
		}
		return false
	}
	c, ok := compare(v, r.value)
	if !ok {
		return false
	}
	switch r.op {
	case opLt:
		return c < 0
	case opLte:
		return c <= 0
	case opGt:
		return c > 0
	}
	return c >= 0 // opGte
}

// number returns v as a number: a JSON number, or a string holding one
// (senders often quote numbers).
func number(v sdk.Result) (float64, bool) {
	switch v.Type {
	case sdk.Number:
		return v.Num, true
	case sdk.String:
		f, err := strconv.ParseFloat(strings.TrimSpace(v.Str), 64)
		return f, err == nil
	}
	return 0, false
}

// equal compares two JSON values: numbers by value (a numeric string
// equals its number), strings and booleans exactly, null to null, objects
// and arrays by their JSON text.
func equal(a, b sdk.Result) bool {
	if a.Type == sdk.Number || b.Type == sdk.Number {
		x, ok1 := number(a)
		y, ok2 := number(b)
		return ok1 && ok2 && x == y
	}
	if a.Type != b.Type {
		return false
	}
	switch a.Type {
	case sdk.String:
		return a.Str == b.Str
	case sdk.JSON:
		return a.Raw == b.Raw
	}
	return true // null, true, false
}

// compare orders two values: numerically when both are numbers (or
// numeric strings) and one is a number, else as strings when both are
// strings; ok is false when they cannot be ordered.
func compare(a, b sdk.Result) (int, bool) {
	if a.Type == sdk.Number || b.Type == sdk.Number {
		x, ok1 := number(a)
		y, ok2 := number(b)
		if !ok1 || !ok2 {
			return 0, false
		}
		switch {
		case x < y:
			return -1, true
		case x > y:
			return 1, true
		}
		return 0, true
	}
	if a.Type == sdk.String && b.Type == sdk.String {
		return strings.Compare(a.Str, b.Str), true
	}
	return 0, false
}
