// Command bareguest is the smallest SDK plugin: its handler returns at
// once. transforms' BenchmarkGuestOverhead compares it with a bare Go
// export to see what the SDK adds to every call.
package main

import "github.com/hookgate/hookgate/plugins/sdk"

func init() { sdk.Handle(func(*sdk.Event) error { return nil }) }

func main() {}
