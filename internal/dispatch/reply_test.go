package dispatch_test

import (
	"context"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/engine"
	"github.com/peerllm/peerllm/internal/engine/benchengine"
	"github.com/peerllm/peerllm/internal/fabric"
	"github.com/peerllm/peerllm/internal/registry"
)

// TestHelloReplyCannotTargetAnotherHost: a host that names another host's
// task subject as the reply of its Hello must not get the orchestrator to
// publish there (NATS does not check reply subjects; the dispatcher must).
func TestHelloReplyCannotTargetAnotherHost(t *testing.T) {
	c := newCluster(t, testConfig())
	victim := c.addHost("victim", "alice", map[string]engine.Engine{"m": benchengine.New(benchengine.Options{Model: "m"})})

	ctx := context.Background()
	evil, secret, err := c.reg.AddHost(ctx, registry.HostSpec{Name: "evil", Owner: "mallory", Region: "local"})
	if err != nil {
		t.Fatal(err)
	}
	observer, err := c.srv.Connect("observer")
	if err != nil {
		t.Fatal(err)
	}
	defer observer.Close()
	sub, err := observer.SubscribeSync(fabric.TaskSubject(victim.id))
	if err != nil {
		t.Fatal(err)
	}
	observer.Flush()

	nc, err := fabric.ConnectHost(ctx, c.srv.URL(), evil.ID, secret)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	hello, _ := fabric.Encode(fabric.Hello{Version: fabric.ProtocolVersion, HostID: evil.ID, Capacity: 1})
	if err := nc.PublishRequest(fabric.HelloSubject(evil.ID), fabric.TaskSubject(victim.id), hello); err != nil {
		t.Fatal(err)
	}
	// A proper Hello afterwards: once it is answered, the forged one (sent
	// before it on the same connection) has been handled.
	if _, err := nc.Request(fabric.HelloSubject(evil.ID), hello, 5*time.Second); err != nil {
		t.Fatalf("proper hello: %v", err)
	}
	if msg, err := sub.NextMsg(200 * time.Millisecond); err == nil {
		t.Fatalf("the orchestrator published onto another host's task subject: %q", msg.Data)
	}
}
