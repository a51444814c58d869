package config_test

import (
	"fmt"

	"github.com/hookgate/hookgate/gateway/config"
)

func ExampleParse() {
	src := `
[[target]]
name = "crm"
url = "https://crm.example.com/tickets"
auth = { type = "bearer", token = "${env:CRM_TOKEN}" }
timeout = "5 seconds"

[[route]]
name = "howxm"
path = "/hooks/howxm"
targets = ["crm2"]
`
	noEnv := func(string) (string, bool) { return "", false }
	if _, err := config.Parse([]byte(src), "config.toml", noEnv); err != nil {
		fmt.Println(err) // every problem, one per line
	}
	// Output:
	// config.toml: target "crm": timeout: "5 seconds" is not a duration (use e.g. "5s", "250ms")
	// config.toml: target "crm": auth: token: environment variable CRM_TOKEN is not set
	// config.toml: route "howxm": target "crm2" is not defined (defined targets: crm)
}
