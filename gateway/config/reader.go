package config

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The file is decoded into a generic tree (map[string]any) and read through
// table, rather than decoded straight into structs, for two reasons:
// toml.Decode stops at the first type mismatch (we want every problem at
// once), and MetaData.Undecoded drops array indices, so it cannot say which
// [[target]] holds the misspelt key. table reads keys one by one, records
// every problem with its full key path, and reports the keys nobody asked
// for as unknown.

// parser collects problems while the tree is read.
type parser struct {
	env      func(string) (string, bool)
	dir      string // directory of the config file, for relative paths
	problems []string
	warnings []string
}

// literalSecret warns when a credential is written into the file: fine for
// a demo, wrong for production, where the file gets copied and committed.
func (t *table) literalSecret(key string, s Secret) {
	if s.IsSet() && s.String() == "[redacted]" {
		t.p.warnings = append(t.p.warnings, fmt.Sprintf("%s: the value is written in the file; in production use %s = \"${env:NAME}\"", t.at(key), key))
	}
}

func (p *parser) addf(format string, args ...any) {
	p.problems = append(p.problems, fmt.Sprintf(format, args...))
}

// table is one TOML table being read. where names it for messages, e.g.
// `target "crm": auth`; "" is the top level.
type table struct {
	p     *parser
	where string
	m     map[string]any
	asked map[string]bool // every key the code looked for, present or not
}

func (p *parser) table(where string, m map[string]any) *table {
	return &table{p: p, where: where, m: m, asked: map[string]bool{}}
}

// at joins the table's path and a key for a message prefix.
func (t *table) at(key string) string {
	if t.where == "" {
		return key
	}
	return t.where + ": " + key
}

// errf records a problem about key.
func (t *table) errf(key, format string, args ...any) {
	t.p.addf("%s: %s", t.at(key), fmt.Sprintf(format, args...))
}

func (t *table) get(key string) (any, bool) {
	t.asked[key] = true
	v, ok := t.m[key]
	return v, ok
}

// has reports whether key is set, and counts it as a known key.
func (t *table) has(key string) bool {
	_, ok := t.get(key)
	return ok
}

// done reports every key that was never asked for, sorted so messages are
// stable, with a suggestion when a known key is a likely typo.
func (t *table) done() {
	var unknown []string
	for k := range t.m {
		if !t.asked[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		msg := fmt.Sprintf("unknown key %q", k)
		if s := t.suggest(k); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		if t.where == "" {
			t.p.addf("%s", msg)
		} else {
			t.p.addf("%s: %s", t.where, msg)
		}
	}
}

func (t *table) suggest(k string) string {
	best, bestD := "", 3
	known := make([]string, 0, len(t.asked))
	for a := range t.asked {
		known = append(known, a)
	}
	sort.Strings(known)
	for _, a := range known {
		if d := editDistance(k, a); d < bestD && d < len(a) {
			best, bestD = a, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance (Levenshtein plus
// adjacent transpositions, so "tragets" is one edit from "targets").
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64 // long keys are never typos of ours; keep the fuzzer fast
	}
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// typeName names a decoded TOML value's type for messages.
func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time:
		return "a datetime"
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("%T", v)
}

// rawString reads a string without resolving `${env:...}`; ok is false
// when absent or mistyped (the latter is recorded).
func (t *table) rawString(key string) (string, bool) {
	v, ok := t.get(key)
	if !ok {
		return "", false
	}
	s, isStr := v.(string)
	if !isStr {
		t.errf(key, "must be a string, not %s", typeName(v))
		return "", false
	}
	return s, true
}

// str reads a plain (non-secret) string, resolving `${env:NAME}`.
func (t *table) str(key, def string) string {
	raw, ok := t.rawString(key)
	if !ok {
		return def
	}
	v, ok := t.p.expand(t.at(key), raw)
	if !ok {
		return def
	}
	return v
}

// secret reads a secret string. The value never appears in a message.
func (t *table) secret(key string) Secret {
	v, ok := t.get(key)
	if !ok {
		return Secret{}
	}
	raw, isStr := v.(string)
	if !isStr {
		// The type only: the value may be the secret itself.
		t.errf(key, "must be a string, not %s", typeName(v))
		return Secret{}
	}
	return t.p.secret(t.at(key), raw)
}

// secretMap reads a table of secret strings, e.g. headers or query; label
// names one entry in messages: `query "apiToken": ...`.
func (t *table) secretMap(key, label string) map[string]Secret {
	v, ok := t.get(key)
	if !ok {
		return nil
	}
	m, isTable := v.(map[string]any)
	if !isTable {
		t.errf(key, "must be a table like { Name = \"value\" }, not %s", typeName(v))
		return nil
	}
	out := make(map[string]Secret, len(m))
	for _, name := range slices.Sorted(maps.Keys(m)) {
		where := fmt.Sprintf("%s %q", label, name)
		if t.where != "" {
			where = t.where + ": " + where
		}
		raw, isStr := m[name].(string)
		if !isStr {
			t.p.addf("%s: must be a string, not %s", where, typeName(m[name]))
			continue
		}
		out[name] = t.p.secret(where, raw)
	}
	return out
}

func (t *table) integer(key string, def int64) int64 {
	v, ok := t.get(key)
	if !ok {
		return def
	}
	n, isInt := v.(int64)
	if !isInt {
		t.errf(key, "must be an integer, not %s", typeName(v))
		return def
	}
	return n
}

// intOf reads an integer that must fit an int and be at least lo.
func (t *table) intOf(key string, def int, lo int64) int {
	n := t.integer(key, int64(def))
	switch {
	case n < lo:
		t.errf(key, "must be at least %d, not %d", lo, n)
		return def
	case n > math.MaxInt32:
		t.errf(key, "%d is too large", n)
		return def
	}
	return int(n)
}

func (t *table) float(key string, def float64) float64 {
	v, ok := t.get(key)
	if !ok {
		return def
	}
	switch f := v.(type) {
	case float64:
		if math.IsNaN(f) || math.IsInf(f, 0) {
			t.errf(key, "must be a finite number")
			return def
		}
		return f
	case int64:
		return float64(f)
	}
	t.errf(key, "must be a number, not %s", typeName(v))
	return def
}

func (t *table) boolean(key string, def bool) bool {
	v, ok := t.get(key)
	if !ok {
		return def
	}
	b, isBool := v.(bool)
	if !isBool {
		t.errf(key, "must be true or false, not %s", typeName(v))
		return def
	}
	return b
}

// duration reads a Go duration string ("5s", "250ms"), never negative.
func (t *table) duration(key string, def time.Duration) time.Duration {
	v, ok := t.get(key)
	if !ok {
		return def
	}
	s, isStr := v.(string)
	if !isStr {
		t.errf(key, "%s is not a duration (use a string such as \"5s\", \"250ms\")", shortValue(v))
		return def
	}
	s, ok = t.p.expand(t.at(key), s)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.errf(key, "%q is not a duration (use e.g. \"5s\", \"250ms\")", s)
		return def
	}
	if d < 0 {
		t.errf(key, "%q must not be negative", s)
		return def
	}
	return d
}

// positive reads a duration that must be more than zero. A value that is
// not a duration at all is reported once, as such.
func (t *table) positive(key string, def time.Duration) time.Duration {
	reported := len(t.p.problems)
	d := t.duration(key, def)
	if d == 0 && len(t.p.problems) == reported {
		t.errf(key, "must be more than 0s")
		return def
	}
	return d
}

// bytes reads a size that must be more than zero and at most max.
func (t *table) bytes(key string, def, max int64) int64 {
	n := t.size(key, def)
	switch {
	case n == 0:
		t.errf(key, "must be more than 0 bytes")
		return def
	case n > max:
		t.errf(key, "%d bytes is too large (at most %d)", n, max)
		return def
	}
	return n
}

// size reads a byte size: "1MiB", "512KiB", "64KB", "1024" or 1024.
func (t *table) size(key string, def int64) int64 {
	v, ok := t.get(key)
	if !ok {
		return def
	}
	var s string
	switch x := v.(type) {
	case int64:
		if x < 0 {
			t.errf(key, "%d must not be negative", x)
			return def
		}
		return x
	case string:
		if s, ok = t.p.expand(t.at(key), x); !ok {
			return def
		}
	default:
		t.errf(key, "%s is not a size (use e.g. \"1MiB\", \"512KiB\", \"64KB\" or a number of bytes)", shortValue(v))
		return def
	}
	n, err := parseSize(s)
	if err != nil {
		t.errf(key, "%q is not a size (use e.g. \"1MiB\", \"512KiB\", \"64KB\" or a number of bytes)", s)
		return def
	}
	return n
}

var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// parseSize parses an integer with an optional unit; KB/MB/GB are powers
// of 1000, KiB/MiB/GiB powers of 1024, as their names say.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("no number")
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, err
	}
	mult, ok := sizeUnits[strings.ToLower(strings.TrimSpace(s[i:]))]
	if !ok {
		return 0, fmt.Errorf("unknown unit")
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("too large")
	}
	return n * mult, nil
}

// strs reads an array of strings.
func (t *table) strs(key string) []string {
	v, ok := t.get(key)
	if !ok {
		return nil
	}
	arr, isArr := v.([]any)
	if !isArr {
		t.errf(key, "must be an array of strings like [\"a\", \"b\"], not %s", typeName(v))
		return nil
	}
	out := make([]string, 0, len(arr))
	for i, e := range arr {
		s, isStr := e.(string)
		if !isStr {
			t.errf(key, "item %d must be a string, not %s", i, typeName(e))
			continue
		}
		if s, ok = t.p.expand(t.at(key), s); ok {
			out = append(out, s)
		}
	}
	return out
}

// ints reads an array of integers.
func (t *table) ints(key string) []int {
	v, ok := t.get(key)
	if !ok {
		return nil
	}
	arr, isArr := v.([]any)
	if !isArr {
		t.errf(key, "must be an array of integers like [200, 201], not %s", typeName(v))
		return nil
	}
	out := make([]int, 0, len(arr))
	for i, e := range arr {
		n, isInt := e.(int64)
		if !isInt || n < math.MinInt32 || n > math.MaxInt32 {
			t.errf(key, "item %d must be an integer, not %s", i, shortValue(e))
			continue
		}
		out = append(out, int(n))
	}
	return out
}

// sub reads a nested table. It is never nil: an absent or mistyped table
// reads as empty, so every key takes its default.
func (t *table) sub(key string) *table {
	v, ok := t.get(key)
	if !ok {
		return t.p.table(t.at(key), nil)
	}
	m, isTable := v.(map[string]any)
	if !isTable {
		t.errf(key, "must be a table, not %s", typeName(v))
		return t.p.table(t.at(key), nil)
	}
	return t.p.table(t.at(key), m)
}

// list reads an array of tables ([[target]] or [{...}, {...}]); the
// result keeps positions, with nil for items that are not tables.
func (t *table) list(key, example string) []map[string]any {
	v, ok := t.get(key)
	if !ok {
		return nil
	}
	switch arr := v.(type) {
	case []map[string]any:
		return arr
	case []any:
		out := make([]map[string]any, len(arr))
		for i, e := range arr {
			m, isTable := e.(map[string]any)
			if !isTable {
				t.errf(key, "item %d must be a table like %s, not %s", i, example, typeName(e))
				continue
			}
			out[i] = m
		}
		return out
	}
	t.errf(key, "must be an array of tables like %s, not %s", example, typeName(v))
	return nil
}

// shortValue renders a non-secret value for a message, cut short.
func shortValue(v any) string {
	var s string
	switch x := v.(type) {
	case string:
		s = strconv.Quote(x)
	case int64, float64, bool:
		s = fmt.Sprint(x)
	default:
		return typeName(v)
	}
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}
