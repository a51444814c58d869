package admin

import (
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/hookgate/hookgate/gateway/config"
)

// TestTargetDeliverySettings: GET /admin/routes shows each target's
// disable_after, order, order_key and pipeline (and GET /admin/targets, which
// embeds the same TargetInfo), left out when not set. Before, an operator
// could not tell from the admin API whether a target would be disabled,
// or kept its deliveries in order.
func TestTargetDeliverySettings(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:9000/crm")
	cfg := &config.Config{
		Path: "config.toml",
		Targets: []config.Target{
			{Name: "crm", URL: u, Method: "POST", Timeout: 10 * time.Second, MaxConns: 64,
				DisableAfter: 72 * time.Hour, Order: config.OrderFIFO, OrderKey: "entry.customer.uid", Pipeline: 4},
			{Name: "sms", URL: u, Method: "POST", Timeout: 10 * time.Second, MaxConns: 64},
		},
		Routes: []config.Route{},
	}
	_, base := startAdmin(t, config.Admin{}, Describer(func() *config.Config { return cfg }))
	st, body := get(t, base+"/admin/routes", "")
	if st != 200 {
		t.Fatalf("status %d", st)
	}
	var got struct {
		Targets []map[string]any `json:"targets"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Targets) != 2 {
		t.Fatalf("targets: %s", body)
	}
	crm, sms := got.Targets[0], got.Targets[1]
	if crm["disable_after"] != "72h0m0s" || crm["order"] != "fifo" || crm["order_key"] != "entry.customer.uid" || crm["pipeline"] != 4.0 {
		t.Fatalf("crm's delivery settings: %v", crm)
	}
	for _, k := range []string{"disable_after", "order", "order_key", "pipeline"} {
		if _, ok := sms[k]; ok {
			t.Fatalf("sms sets no %s, but it is shown: %v", k, sms)
		}
	}
}
