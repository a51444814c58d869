package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func connect(t *testing.T, urls string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// A restarted server keeps its port and what JetStream stored.
func TestRestartKeepsData(t *testing.T) {
	s := Start(t)
	js := connect(t, s.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "t", Subjects: []string{"t.>"}, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "t.a", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	s.Shutdown()
	short, cancelShort := context.WithTimeout(ctx, time.Second)
	defer cancelShort()
	if _, err := js.Publish(short, "t.a", []byte("x"), jetstream.WithRetryAttempts(0)); err == nil {
		t.Fatal("publish to a shut-down server succeeded")
	}
	s.Restart()
	m, err := st.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != "kept" {
		t.Fatalf("after restart, message 1 is %q, want %q", m.Data, "kept")
	}
}

// A 3-node cluster takes R3 streams and goes on with one node down.
//
// Each step retries: a request the cluster loses (its meta leader stepped
// down on a loaded machine) is never answered, a new R3 stream elects its
// own leader after CreateStream returns (until then a publish finds no
// responder: "no response from stream"), and after a node goes the stream
// elects again while the client reconnects. Every step is safe to repeat:
// creating the same stream again is harmless, and a publish carries its
// data as the message ID, so a try that timed out but was stored counts
// once.
func TestClusterSurvivesOneNode(t *testing.T) {
	c := Cluster(t, 3)
	js := connect(t, c.URLs()[0]+","+c.URLs()[1]+","+c.URLs()[2])
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	publish := func(data string) func(context.Context) error {
		return func(try context.Context) error {
			_, err := js.Publish(try, "t.a", []byte(data), jetstream.WithMsgID(data))
			return err
		}
	}
	if err := retry(ctx, 2*time.Minute, 10*time.Second, func(try context.Context) error {
		_, err := js.CreateStream(try, jetstream.StreamConfig{Name: "t", Subjects: []string{"t.>"}, Replicas: 3, Storage: jetstream.FileStorage})
		return err
	}); err != nil {
		t.Fatalf("creating an R3 stream: %v", err)
	}
	if err := retry(ctx, time.Minute, 2*time.Second, publish("1")); err != nil {
		t.Fatalf("publish to a new R3 stream: %v", err)
	}
	c.Node(0).Shutdown()
	c.WaitLeader()
	if err := retry(ctx, time.Minute, 2*time.Second, publish("2")); err != nil {
		t.Fatalf("publish with one of three nodes down: %v", err)
	}
	c.Node(0).Restart()
	c.WaitLeader()
	var msgs uint64
	if err := retry(ctx, time.Minute, 2*time.Second, func(try context.Context) error {
		st, err := js.Stream(try, "t")
		if err == nil {
			msgs = st.CachedInfo().State.Msgs
		}
		return err
	}); err != nil {
		t.Fatalf("stream info after the node came back: %v", err)
	}
	if msgs != 2 {
		t.Fatalf("stream has %d messages, want 2", msgs)
	}
}

// retry calls f until it succeeds or within has passed, giving each try
// its own deadline (each): a request sent while the client reconnects, or
// one the cluster lost, waits for its answer until then.
func retry(ctx context.Context, within, each time.Duration, f func(context.Context) error) error {
	for end := time.Now().Add(within); ; time.Sleep(100 * time.Millisecond) {
		try, cancel := context.WithTimeout(ctx, each)
		err := f(try)
		cancel()
		if err == nil || time.Now().After(end) {
			return err
		}
	}
}
