package config

import (
	"strings"
	"testing"
)

// TestOperationsWithoutQueueWarns: [operations] while every route is
// sync is a warning: with the embedded store no queue is opened then, and
// operational events would go nowhere. With an async route, or the nats
// backend (whose queue always exists), there is none. Before, nothing
// said so.
func TestOperationsWithoutQueueWarns(t *testing.T) {
	env := mapEnv(map[string]string{"WHSEC": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
	const ops = "[operations]\ntarget = \"ops\"\n"
	warned := func(t *testing.T, text string) bool {
		t.Helper()
		c, err := Parse([]byte(text), "c.toml", env)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range c.Warnings {
			if strings.HasPrefix(w, "operations:") {
				if !strings.Contains(w, "async") || !strings.Contains(w, "remove [operations]") {
					t.Fatalf("the warning does not say what to do: %q", w)
				}
				return true
			}
		}
		return false
	}
	syncOnly := strings.Replace(opsBase, `targets = ["crm"]`, "mode = \"sync\"\ntargets = [\"crm\"]", 1)
	if !warned(t, syncOnly+ops) {
		t.Fatal("no warning for [operations] while no route is async")
	}
	if warned(t, opsBase+ops) {
		t.Fatal("a warning although a route is async")
	}
	if warned(t, syncOnly) {
		t.Fatal("a warning without [operations]")
	}
	if warned(t, "[queue]\nbackend = \"nats\"\n"+syncOnly+ops) {
		t.Fatal("a warning with the nats backend, whose queue always exists")
	}
}
