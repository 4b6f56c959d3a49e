package fabric

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// BenchmarkOrchestratorConn compares the two ways the orchestrator can join
// its embedded server, on the path that matters: a host streaming chunks
// (one small message per token) to the orchestrator.
func BenchmarkOrchestratorConn(b *testing.B) {
	secret := NewSecret()
	s, err := StartServer(ServerConfig{Listen: "127.0.0.1:0", VerifyHost: func(id, sec string) bool { return sec == secret }})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	host, err := ConnectHost(ctx, s.URL(), "bench-host", secret)
	if err != nil {
		b.Fatal(err)
	}
	defer host.Close()
	chunk, _ := Encode(&Chunk{TaskID: "AQMkOwNhePWBv7x0SAiscz", Seq: 123, Tokens: []ChunkToken{{ID: 1234, Text: " little", Index: 123}}})
	for _, tc := range []struct {
		name string
		opts []nats.Option
		url  string
	}{
		{"tcp-loopback", nil, s.URL()},
		{"in-process-pipe", []nats.Option{nats.InProcessServer(s.ns)}, ""},
	} {
		b.Run(tc.name, func(b *testing.B) {
			orch, err := nats.Connect(tc.url, append([]nats.Option{nats.UserInfo(internalUser, s.password)}, tc.opts...)...)
			if err != nil {
				b.Fatal(err)
			}
			defer orch.Close()
			const n = 1000
			for b.Loop() {
				sub, err := orch.SubscribeSync(OutSubject("bench-host", "t"))
				if err != nil {
					b.Fatal(err)
				}
				if err := orch.Flush(); err != nil {
					b.Fatal(err)
				}
				for range n {
					if err := host.Publish(OutSubject("bench-host", "t"), chunk); err != nil {
						b.Fatal(err)
					}
				}
				for range n {
					if _, err := sub.NextMsg(10 * time.Second); err != nil {
						b.Fatal(err)
					}
				}
				_ = sub.Unsubscribe()
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "chunks/s")
		})
	}
}

// BenchmarkRequestReply is the bare NATS round trip orchestrator → host →
// orchestrator through the embedded server: the floor under a task's time
// to first token.
func BenchmarkRequestReply(b *testing.B) {
	secret := NewSecret()
	s, err := StartServer(ServerConfig{Listen: "127.0.0.1:0", VerifyHost: func(id, sec string) bool { return sec == secret }})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	host, err := ConnectHost(ctx, s.URL(), "bench-host", secret)
	if err != nil {
		b.Fatal(err)
	}
	defer host.Close()
	if _, err := host.Subscribe(TaskSubject("bench-host"), func(m *nats.Msg) { _ = m.Respond(m.Data) }); err != nil {
		b.Fatal(err)
	}
	if err := host.Flush(); err != nil {
		b.Fatal(err)
	}
	orch, err := s.Connect("bench")
	if err != nil {
		b.Fatal(err)
	}
	defer orch.Close()
	for b.Loop() {
		if _, err := orch.Request(TaskSubject("bench-host"), []byte("x"), 10*time.Second); err != nil {
			b.Fatal(err)
		}
	}
}
