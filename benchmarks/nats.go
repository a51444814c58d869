package main

import (
	"fmt"
	"net"
	"path/filepath"
	"time"
)

// The async-nats scenario measures hookgate with [queue] backend = "nats":
// the same async route and load as "async", with the deliveries stored in
// a JetStream stream on a nats-server running on this machine, as a team
// would run one beside hookgate. The harness builds that server from the
// module in go.mod (the version the tests run in-process), so a run needs
// nothing installed, and starts one per measurement on the server CPUs,
// like every server under test.

// natsModule is the nats-server main package, pinned by go.mod.
const natsModule = "github.com/nats-io/nats-server/v2"

// needsNATS reports whether any scenario in scs runs on the nats backend.
func needsNATS(scs []Scenario) bool {
	for _, sc := range scs {
		if sc.plan != nil && sc.plan.backend == "nats" {
			return true
		}
	}
	return false
}

// buildNATS builds nats-server once for the whole run. It returns the
// binary, or "" and the reason it did not build.
func buildNATS(dir string, split CoreSplit) (string, string) {
	return goBuild(filepath.Join(dir, "nats-server"), natsModule, split)
}

// startNATS runs a JetStream nats-server on a free 127.0.0.1 port with
// its store in a fresh directory named after the measurement, and returns
// it with its client URL once it accepts connections. nats-server opens
// its client port only after JetStream is up, so a connection accepted
// means streams can be created.
func startNATS(env *Env, name string) (*Child, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, "", err
	}
	store := filepath.Join(env.Dir, name+"-store")
	c, err := startChild(env.Split, env.Dir, name, nil, env.NATSServer, "-js", "-a", host, "-p", port, "-sd", store)
	if err != nil {
		return nil, "", err
	}
	if err := waitReady(c, addr, 30*time.Second); err != nil {
		c.Stop(time.Second)
		return nil, "", fmt.Errorf("nats-server: %v", err)
	}
	return c, "nats://" + addr, nil
}
