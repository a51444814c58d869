package transforms

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/internal/syncbuf"
	"github.com/hookgate/hookgate/plugins/abi/abitest"
)

// TestABI runs the ABI v1 conformance kit against this host.
func TestABI(t *testing.T) { abitest.Run(t, kitHost{}, nil) }

// kitHost is the kit's view of Host.
type kitHost struct{}

func (kitHost) Load(t *testing.T, name string, guest []byte) abitest.Plugin {
	t.Helper()
	return newConfHostWith(t, name, guest)
}

func (kitHost) Kind(err error) string {
	var pe *PluginError
	if errors.As(err, &pe) {
		return pe.Kind
	}
	return ""
}

// confHost is a host with one guest loaded, its log captured as JSON.
type confHost struct {
	h    *Host
	name string
	logs *syncbuf.Buffer
}

// newConfHost loads the kit's guest as "conf".
func newConfHost(t *testing.T) confHost {
	t.Helper()
	return newConfHostWith(t, "conf", abitest.Guest(t))
}

func newConfHostWith(t *testing.T, name string, guest []byte) confHost {
	t.Helper()
	logs := &syncbuf.Buffer{}
	h := newTestHost(t)
	h.logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// A timeout no loaded CI machine reaches: these tests are about
	// behaviour, not speed.
	load(t, h, PluginSpec{Name: name, Wasm: guest, Instances: 2, Timeout: 10 * time.Second})
	return confHost{h: h, name: name, logs: logs}
}

func (c confHost) Chain(t *testing.T, route string, targets []string, configs ...[]byte) abitest.Chain {
	t.Helper()
	var steps []Step
	for _, cfg := range configs {
		steps = append(steps, Step{Plugin: c.name, Config: cfg})
	}
	return chain(t, c.h, route, targets, steps...)
}

func (c confHost) Logs(t *testing.T) []abitest.LogLine {
	t.Helper()
	var out []abitest.LogLine
	for _, m := range logLines(t, c.logs, "guest") {
		var l abitest.LogLine
		level, _ := m["level"].(string)
		if err := l.Level.UnmarshalText([]byte(level)); err != nil {
			t.Fatalf("log line %v: %v", m, err)
		}
		l.Msg, _ = m["msg"].(string)
		l.Plugin, _ = m["plugin"].(string)
		l.Route, _ = m["route"].(string)
		l.EventID, _ = m["event_id"].(string)
		out = append(out, l)
	}
	return out
}

// run runs one guest step in mode over the test event.
func (c confHost) run(t *testing.T, mode string) error {
	t.Helper()
	ch := c.Chain(t, "r", []string{"crm", "surveylab"}, []byte(`{"mode":"`+mode+`"}`))
	return ch.Run(context.Background(), testEvent(), &delivery.Outcome{})
}

// logLines decodes the JSON log lines with the given source attribute.
func logLines(t *testing.T, logs *syncbuf.Buffer, source string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["source"] == source {
			delete(m, "time")
			out = append(out, m)
		}
	}
	return out
}
