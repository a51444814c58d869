package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const opsBase = `
[[target]]
name = "crm"
url = "http://127.0.0.1:9000/crm"
disable_after = "72h"

[[target]]
name = "ops"
url = "http://127.0.0.1:9000/ops"
auth = { type = "standard-webhooks", secret = "${env:WHSEC}" }

[[route]]
name = "r"
path = "/hooks/r"
targets = ["crm"]
`

// TestOperations: disable_after and [operations] are read with their
// defaults, and each mistake is one problem saying what to write.
func TestOperations(t *testing.T) {
	env := mapEnv(map[string]string{"WHSEC": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
	c, err := Parse([]byte(opsBase+"[operations]\ntarget = \"ops\"\n"), "c.toml", env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Target("crm").DisableAfter != 72*time.Hour || c.Target("ops").DisableAfter != 0 {
		t.Fatalf("disable_after: %v, %v", c.Target("crm").DisableAfter, c.Target("ops").DisableAfter)
	}
	o := c.Operations
	if o.Target != "ops" || o.HighWater != DefaultOperationsHighWater || strings.Join(o.Events, ",") != strings.Join(OperationEvents, ",") {
		t.Fatalf("operations: %+v", o)
	}
	if !o.Sends(EventTargetDisabled) || (&Operations{Events: OperationEvents}).Sends(EventTargetDisabled) {
		t.Fatal("Sends: an event is sent only when a target is set")
	}

	for _, tc := range []struct{ ops, want string }{
		{"target = \"nope\"", `operations: target: "nope" is not defined (defined targets: crm, ops)`},
		{"target = \"crm\"", `operations: target: "crm" has no auth, and operational events must be signed`},
		{"target = \"ops\"\nevents = [\"target.down\"]", `operations: events: "target.down" is not an operational event (use delivery.dead, target.disabled, target.recovered, queue.high_water)`},
		{"target = \"ops\"\nhigh_water = 1.5", `operations: high_water: 1.5 is out of range`},
		{"events = [\"delivery.dead\"]", `operations: target: is missing`},
		{"target = \"ops\"\nhigh_wter = 0.5", `high_wter`},
	} {
		_, err := Parse([]byte(opsBase+"[operations]\n"+tc.ops+"\n"), "c.toml", env)
		var ce *Error
		if !errors.As(err, &ce) || len(ce.Problems) != 1 || !strings.Contains(ce.Problems[0], tc.want) {
			t.Errorf("%s: got %v, want one problem containing %q", tc.ops, err, tc.want)
		}
	}
	if _, err := Parse([]byte(strings.Replace(opsBase, `"72h"`, `"-1h"`, 1)), "c.toml", env); err == nil || !strings.Contains(err.Error(), "disable_after") {
		t.Errorf("a negative disable_after: %v", err)
	}
}
