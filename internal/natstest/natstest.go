// Package natstest runs real nats-server instances inside a test process:
// a single JetStream node (Start) or a JetStream cluster (Cluster). Tests
// of the NATS queue engine use it instead of mocks, so they exercise the
// same server code a deployment runs.
//
// Every server listens on 127.0.0.1 only, keeps its JetStream store under
// t.TempDir(), and is shut down by t.Cleanup. A node can be shut down and
// restarted on the same ports and store, so a test can take NATS away and
// bring it back with its data ("NATS down, then back"; "one node killed").
package natstest

import (
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testport"
	"github.com/nats-io/nats-server/v2/server"
)

// readyTimeout bounds how long a test waits for a server to accept
// connections (or a cluster to elect a meta leader). It is a failure
// timeout for a noisy 2-core machine, not an expectation.
const readyTimeout = 30 * time.Second

// Server is one nats-server with JetStream enabled.
type Server struct {
	t         testing.TB
	name      string
	dir       string // JetStream store, kept across Restart
	port      int    // client port, kept across Restart
	configure []func(*server.Options)
	cluster   *clusterConf // nil for a single node

	mu  sync.Mutex
	srv *server.Server // nil while shut down
}

type clusterConf struct {
	name   string
	port   int      // this node's route port
	routes []string // every node's route URL (its own is ignored by the server)
}

// Start runs a single JetStream node on a random 127.0.0.1 port. configure
// functions may adjust the options before the server starts (for example
// to require a token); they run again at every Restart.
func Start(t testing.TB, configure ...func(*server.Options)) *Server {
	t.Helper()
	s := &Server{t: t, name: "single", dir: t.TempDir(), port: testport.Port(t), configure: configure}
	s.start()
	t.Cleanup(s.Shutdown)
	return s
}

// URL is the client URL, e.g. nats://127.0.0.1:41234. It stays the same
// across Restart.
func (s *Server) URL() string {
	return "nats://127.0.0.1:" + strconv.Itoa(s.port)
}

// Port is the client port.
func (s *Server) Port() int { return s.port }

// Server is the running nats-server, or nil while shut down.
func (s *Server) Server() *server.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv
}

// Shutdown stops the server (clients see the connection drop). It is safe
// to call when already shut down.
func (s *Server) Shutdown() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// Restart starts the server again on the same port with the same store,
// so everything JetStream had stored is there again. A running server is
// shut down first.
func (s *Server) Restart() {
	s.t.Helper()
	s.Shutdown()
	s.start()
}

func (s *Server) options() *server.Options {
	o := &server.Options{
		ServerName: s.name,
		Host:       "127.0.0.1",
		Port:       s.port,
		JetStream:  true,
		StoreDir:   s.dir,
		NoLog:      true,
		NoSigs:     true,
		// The default 2 minutes makes a restarted cluster node wait long
		// before it may shut down cleanly; tests restart nodes often.
		LameDuckDuration: 0,
	}
	if c := s.cluster; c != nil {
		o.Cluster.Name = c.name
		o.Cluster.Host = "127.0.0.1"
		o.Cluster.Port = c.port
		for _, r := range c.routes {
			u, err := url.Parse(r)
			if err != nil {
				s.t.Fatalf("natstest: route %q: %v", r, err)
			}
			o.Routes = append(o.Routes, u)
		}
	}
	for _, f := range s.configure {
		f(o)
	}
	return o
}

func (s *Server) start() {
	s.t.Helper()
	srv, err := server.NewServer(s.options())
	if err != nil {
		s.t.Fatalf("natstest: %s: %v", s.name, err)
	}
	srv.Start()
	if !srv.ReadyForConnections(readyTimeout) {
		srv.Shutdown()
		s.t.Fatalf("natstest: %s not ready on port %d within %s", s.name, s.port, readyTimeout)
	}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
}

// Clustered is a JetStream cluster of nodes routed to each other.
type Clustered struct {
	t     testing.TB
	nodes []*Server
}

// Cluster runs an n-node JetStream cluster on random 127.0.0.1 ports and
// returns once it has elected a meta leader, so streams with up to n
// replicas can be created at once.
func Cluster(t testing.TB, n int, configure ...func(*server.Options)) *Clustered {
	t.Helper()
	if n < 1 {
		t.Fatalf("natstest: a cluster needs at least one node, not %d", n)
	}
	routes := make([]string, n)
	routePorts := make([]int, n)
	for i := range routePorts {
		routePorts[i] = testport.Port(t)
		routes[i] = "nats-route://127.0.0.1:" + strconv.Itoa(routePorts[i])
	}
	c := &Clustered{t: t}
	for i := 0; i < n; i++ {
		c.nodes = append(c.nodes, &Server{
			t:         t,
			name:      fmt.Sprintf("n%d", i),
			dir:       t.TempDir(),
			port:      testport.Port(t),
			configure: configure,
			cluster:   &clusterConf{name: "hookgate-test", port: routePorts[i], routes: routes},
		})
	}
	// Start every node before waiting on any: a node is only ready for
	// JetStream once it sees the others.
	var wg sync.WaitGroup
	for _, s := range c.nodes {
		t.Cleanup(s.Shutdown)
		wg.Add(1)
		go func() {
			defer wg.Done()
			srv, err := server.NewServer(s.options())
			if err != nil {
				t.Errorf("natstest: %s: %v", s.name, err)
				return
			}
			srv.Start()
			s.mu.Lock()
			s.srv = srv
			s.mu.Unlock()
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for _, s := range c.nodes {
		if !s.Server().ReadyForConnections(readyTimeout) {
			t.Fatalf("natstest: %s not ready on port %d within %s", s.name, s.port, readyTimeout)
		}
	}
	c.WaitLeader()
	return c
}

// URLs are the client URLs of every node, for a client's server list.
func (c *Clustered) URLs() []string {
	out := make([]string, len(c.nodes))
	for i, s := range c.nodes {
		out[i] = s.URL()
	}
	return out
}

// Node is node i (0-based), to Shutdown or Restart it.
func (c *Clustered) Node(i int) *Server { return c.nodes[i] }

// WaitLeader waits until the running nodes agree on a JetStream meta
// leader, every running node is current with it, and the leader counts
// every running node as a peer it may place replicas on (after Cluster,
// and after a node was shut down or restarted). Without the last, a
// stream with as many replicas as nodes can be refused for a moment after
// the leader is elected: "no suitable peers for placement, peer offline",
// until the leader has heard each node's first statistics.
func (c *Clustered) WaitLeader() {
	c.t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		var leader *server.Server
		leaders, current, running := 0, 0, 0
		for _, s := range c.nodes {
			srv := s.Server()
			if srv == nil {
				continue
			}
			running++
			if srv.JetStreamIsLeader() {
				leaders++
				leader = srv
			}
			if srv.JetStreamIsCurrent() {
				current++
			}
		}
		placeable := 0
		if leaders == 1 {
			placeable = c.placeable(leader)
		}
		if leaders == 1 && current == running && placeable == running {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("natstest: cluster not ready after %s (%d running, %d leaders, %d current, %d placeable)",
				readyTimeout, running, leaders, current, placeable)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// placeable counts the running nodes the meta leader would place a
// replica on (online, with JetStream, statistics received).
func (c *Clustered) placeable(leader *server.Server) int {
	peers := map[string]bool{}
	for _, name := range leader.JetStreamClusterPeers() {
		peers[name] = true
	}
	n := 0
	for _, s := range c.nodes {
		if s.Server() != nil && peers[s.name] {
			n++
		}
	}
	return n
}
