// Command testguest is a plugin for measuring the SDK itself in the real
// host: config {"mode": "..."} picks how much of the SDK a call uses.
package main

import "github.com/hookgate/hookgate/plugins/sdk"

func init() { sdk.Handle(handle) }

func main() {}

type config struct{ mode string }

func parse(raw []byte) (config, error) { return config{mode: sdk.Get(raw, "mode").String()}, nil }

func handle(e *sdk.Event) error {
	c, err := sdk.LoadConfig(e, parse)
	if err != nil {
		return err
	}
	switch c.mode {
	case "body":
		_ = e.Body()
	case "get":
		_ = sdk.Get(e.Body(), "event_type")
	case "foreach":
		n := 0
		sdk.Parse(e.Body()).ForEach(func(k, v sdk.Result) bool { n++; return true })
	case "get100":
		b := e.Body()
		for i := 0; i < 100; i++ {
			_ = sdk.Get(b, "event_type")
		}
	case "deep":
		deep(200)
	case "scan":
		sc.Reset(e.Body())
		sc.Object(func(key string) bool {
			if key == "event_type" {
				_ = sc.Value()
			}
			return true
		})
	case "walk":
		sc.Reset(e.Body())
		walk()
	case "emit":
		e.Emit("crm").SetBody(e.Body())
	}
	return nil
}

// deep uses about 40 KiB of stack, to see whether stack growth costs per call.
func deep(n int) byte {
	var pad [200]byte
	pad[n%200] = byte(n)
	if n == 0 {
		return pad[0]
	}
	return deep(n-1) + pad[n%200]
}

var sc sdk.Scanner

// walk reads every value of the document with the Scanner.
func walk() {
	if sc.Object(func(string) bool { walk(); return true }) {
		return
	}
	if sc.Array(func(int) bool { walk(); return true }) {
		return
	}
	sc.Value()
}
