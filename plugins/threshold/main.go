// Command threshold is a hookgate plugin for seed 003's "after N
// occurrences, act": it counts events per user in the plugin's key-value
// store and lets through only the Nth within a window. See README.md.
package main

import (
	"errors"
	"fmt"
	"strconv"
	"time"
	"unsafe"

	"github.com/hookgate/hookgate/plugins/sdk"
)

func init() { sdk.Handle(handle) }

func main() {}

type config struct {
	name   string        // namespace of the counters in the plugin's store
	key    string        // JSON path of the user key in the body
	count  int64         // act on exactly this occurrence
	window time.Duration // counter TTL from the first occurrence; 0 never expires
	target string        // "" lets the event itself through
	delay  time.Duration
	body   []byte // nil passes the event's body

	noKey  string // drop reason when the body has no user key
	acting string // ", acting on occurrence N", the end of the usual drop reason
}

func parseConfig(raw []byte) (*config, error) {
	if !sdk.Valid(raw) {
		return nil, errors.New("threshold: config is not valid JSON")
	}
	c := &config{name: "threshold"}
	var err error
	sdk.Parse(raw).ForEach(func(k, v sdk.Result) bool {
		switch k.Str {
		case "name":
			if c.name = v.Str; v.Type != sdk.String || v.Str == "" {
				err = errors.New("threshold: name must be a non-empty string")
			}
		case "key":
			if c.key = v.Str; v.Type != sdk.String || v.Str == "" {
				err = errors.New(`threshold: key must be the JSON path of the user key, e.g. "visitor.id"`)
			}
		case "count":
			if c.count = v.Int(); v.Type != sdk.Number || float64(c.count) != v.Num || c.count < 1 {
				err = fmt.Errorf("threshold: count is %s; want a whole number >= 1", v.Raw)
			}
		case "window":
			c.window, err = duration(v, "window")
		case "delay":
			c.delay, err = duration(v, "delay")
		case "target":
			if c.target = v.Str; v.Type != sdk.String {
				err = errors.New("threshold: target must be a target name (a string)")
			}
		case "body":
			// A string is sent as is; any other JSON value as its JSON text.
			c.body = []byte(v.Raw)
			if v.Type == sdk.String {
				c.body = []byte(v.Str)
			}
		default:
			err = fmt.Errorf("threshold: unknown config key %q (want key, count, window, target, delay, body, name)", k.Str)
		}
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	if c.key == "" || c.count == 0 {
		return nil, errors.New(`threshold: config needs key (JSON path of the user key) and count, e.g. {"key": "visitor.id", "count": 3}`)
	}
	c.noKey = "threshold: no user key at " + c.key
	c.acting = ", acting on occurrence " + strconv.FormatInt(c.count, 10)
	return c, nil
}

func duration(v sdk.Result, key string) (time.Duration, error) {
	d, err := time.ParseDuration(v.Str)
	if v.Type != sdk.String || err != nil || d < 0 {
		return 0, fmt.Errorf("threshold: %s is %s; want a duration such as \"24h\" or \"90s\"", key, v.Raw)
	}
	return d, nil
}

// kvKey and reason are reused across calls (one instance runs one call at
// a time): a call allocates nothing. They are passed to the host as string
// views, which is safe because the host copies what it reads before the
// function returns (ABI.md).
var kvKey, reason []byte

func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func handle(e *sdk.Event) error {
	c, err := sdk.LoadConfig(e, parseConfig)
	if err != nil {
		return err
	}
	user := sdk.Get(e.Body(), c.key)
	if !(user.Type == sdk.Number || user.Type == sdk.String && user.Str != "") {
		return e.Drop(c.noKey)
	}
	kvKey = append(kvKey[:0], c.name...)
	kvKey = append(kvKey, ':')
	if user.Type == sdk.String {
		kvKey = append(kvKey, user.Str...)
	} else {
		kvKey = append(kvKey, user.Raw...)
	}
	n := sdk.KV.Incr(view(kvKey), 1, c.window)
	if n != c.count {
		reason = append(reason[:0], "threshold: occurrence "...)
		reason = strconv.AppendInt(reason, n, 10)
		reason = append(reason, " of "...)
		reason = append(reason, kvKey...)
		reason = append(reason, c.acting...)
		return e.Drop(view(reason))
	}
	if c.target == "" {
		if c.body != nil {
			e.SetBody(c.body)
		}
		if c.delay > 0 {
			e.Delay(c.delay)
		}
		return nil
	}
	d := e.Emit(c.target)
	if c.body != nil {
		d.SetBody(c.body)
	}
	if c.delay > 0 {
		d.Delay(c.delay)
	}
	return nil
}
