//go:build !race

// Allocation tests are built without the race detector, which allocates
// on its own (and makes sync.Pool drop items at random); make test runs
// the suite both with and without -race, so they do run.

package dispatch

import (
	"testing"

	"github.com/hookgate/hookgate/gateway/config"
)

func TestJudgeAllocatesNothing(t *testing.T) {
	cfg := config.Success{Status: []int{200}, JSONPath: "status", JSONEquals: "true"}
	body := []byte(`{"status":true,"id":12}`)
	if n := testing.AllocsPerRun(100, func() { Judge(cfg, 200, body) }); n != 0 {
		t.Fatalf("Judge allocates %.0f times", n)
	}
}
