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
func TestClusterSurvivesOneNode(t *testing.T) {
	c := Cluster(t, 3)
	js := connect(t, c.URLs()[0]+","+c.URLs()[1]+","+c.URLs()[2])
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// A request the cluster loses (its meta leader stepped down on a
	// loaded machine) is never answered: each try gets its own deadline,
	// and creating the same stream again is harmless.
	var err error
	for end := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		try, cancelTry := context.WithTimeout(ctx, 10*time.Second)
		_, err = js.CreateStream(try, jetstream.StreamConfig{Name: "t", Subjects: []string{"t.>"}, Replicas: 3, Storage: jetstream.FileStorage})
		cancelTry()
		if err == nil || time.Now().After(end) {
			break
		}
	}
	if err != nil {
		t.Fatalf("creating an R3 stream: %v", err)
	}
	// A new R3 stream elects its own leader after CreateStream returns:
	// until then a publish finds no responder ("no response from stream").
	if err := publish(ctx, js, "1"); err != nil {
		t.Fatalf("publish to a new R3 stream: %v", err)
	}
	c.Node(0).Shutdown()
	c.WaitLeader()
	// The stream may need a moment to elect a new leader, and the client
	// to reconnect if it was on the node that went.
	if err := publish(ctx, js, "2"); err != nil {
		t.Fatalf("publish with one of three nodes down: %v", err)
	}
	c.Node(0).Restart()
	c.WaitLeader()
	var msgs uint64
	for end := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		try, cancelTry := context.WithTimeout(ctx, 2*time.Second)
		var st jetstream.Stream
		st, err = js.Stream(try, "t")
		cancelTry()
		if err == nil {
			msgs = st.CachedInfo().State.Msgs
			break
		}
		if time.Now().After(end) {
			t.Fatalf("stream info after the node came back: %v", err)
		}
	}
	if msgs != 2 {
		t.Fatalf("stream has %d messages, want 2", msgs)
	}
}

// publish stores data on t.a with data as its message ID, trying again
// for up to a minute while the stream has no leader or the client is
// reconnecting. Each try gets its own short deadline (a publish sent
// while reconnecting waits for its answer until then); the ID makes a
// try that timed out but was stored count once.
func publish(ctx context.Context, js jetstream.JetStream, data string) error {
	var err error
	for end := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		try, cancelTry := context.WithTimeout(ctx, 2*time.Second)
		_, err = js.Publish(try, "t.a", []byte(data), jetstream.WithMsgID(data))
		cancelTry()
		if err == nil || time.Now().After(end) {
			return err
		}
	}
}
