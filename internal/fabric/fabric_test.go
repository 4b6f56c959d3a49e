package fabric_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/peerllm/peerllm/internal/fabric"
)

// hostBook is the orchestrator's view of host credentials: id → secret hash.
type hostBook struct {
	mu     sync.Mutex
	hashes map[string]string
}

func (b *hostBook) add(id string) string {
	s := fabric.NewSecret()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.hashes == nil {
		b.hashes = map[string]string{}
	}
	b.hashes[id] = fabric.HashSecret(s)
	return s
}

func (b *hostBook) verify(id, secret string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	h, ok := b.hashes[id]
	return ok && fabric.CheckSecret(h, secret)
}

func startServer(t *testing.T, book *hostBook) *fabric.Server {
	t.Helper()
	s, err := fabric.StartServer(fabric.ServerConfig{Listen: "127.0.0.1:0", VerifyHost: book.verify})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// errSink collects a connection's asynchronous errors.
type errSink chan error

func (e errSink) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	select {
	case e <- err:
	default:
	}
}

// waitPermissionViolation waits for a permissions violation naming subject.
func (e errSink) waitPermissionViolation(t *testing.T, subject string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case err := <-e:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), subject) {
				return
			}
		case <-deadline:
			t.Fatalf("no permissions violation for %s", subject)
		}
	}
}

func connectHost(t *testing.T, url, id, secret string, opts ...nats.Option) (*nats.Conn, errSink) {
	t.Helper()
	sink := make(errSink, 16)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := fabric.ConnectHost(ctx, url, id, secret, append(opts, nats.ErrorHandler(sink.handler))...)
	if err != nil {
		t.Fatalf("connect host %s: %v", id, err)
	}
	t.Cleanup(nc.Close)
	return nc, sink
}

// checkIsolation runs the permission checks against any server: orch has full
// rights, a and b are hosts.
func checkIsolation(t *testing.T, orch, a *nats.Conn, aErrs errSink) {
	t.Helper()
	// What a host may do works.
	tasks, err := a.SubscribeSync(fabric.TaskSubject("host-a"))
	if err != nil {
		t.Fatal(err)
	}
	outs, err := orch.SubscribeSync("peerllm.out.>")
	if err != nil {
		t.Fatal(err)
	}
	hbs, err := orch.SubscribeSync("peerllm.hb.>")
	if err != nil {
		t.Fatal(err)
	}
	hello, err := orch.Subscribe("peerllm.hello.*", func(m *nats.Msg) {
		b, _ := fabric.Encode(fabric.HelloAck{OK: true, HeartbeatEvery: time.Second})
		_ = m.Respond(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer hello.Unsubscribe()
	if err := orch.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := orch.Publish(fabric.TaskSubject("host-a"), []byte("t1")); err != nil {
		t.Fatal(err)
	}
	if m, err := tasks.NextMsg(10 * time.Second); err != nil || string(m.Data) != "t1" {
		t.Fatalf("host did not get its task: %v", err)
	}
	b, _ := fabric.Encode(fabric.Hello{HostID: "host-a"})
	reply, err := a.Request(fabric.HelloSubject("host-a"), b, 10*time.Second)
	if err != nil {
		t.Fatalf("hello request: %v", err)
	}
	var ack fabric.HelloAck
	if err := fabric.Decode(reply.Data, &ack); err != nil || !ack.OK {
		t.Fatalf("hello ack %+v: %v", ack, err)
	}

	// What a host may not do is refused by the server.
	for _, subj := range []string{fabric.TaskSubject("host-b"), fabric.CancelSubject("host-b"), "peerllm.out.host-b.x", "peerllm.>", "_INBOX.host-b.>", ">"} {
		t.Run("subscribe "+subj, func(t *testing.T) {
			if _, err := a.SubscribeSync(subj); err != nil {
				t.Fatal(err)
			}
			if err := a.Flush(); err != nil {
				t.Fatal(err)
			}
			aErrs.waitPermissionViolation(t, subj)
		})
	}
	for _, subj := range []string{fabric.OutSubject("host-b", "t1"), fabric.HeartbeatSubject("host-b"), fabric.HelloSubject("host-b"), fabric.TaskSubject("host-a"), fabric.TaskSubject("host-b")} {
		t.Run("publish "+subj, func(t *testing.T) {
			if err := a.Publish(subj, []byte("forged")); err != nil {
				t.Fatal(err)
			}
			if err := a.Flush(); err != nil {
				t.Fatal(err)
			}
			aErrs.waitPermissionViolation(t, subj)
		})
	}
	// Forged messages never arrived; the host's own ones did, in order.
	if err := a.Publish(fabric.OutSubject("host-a", "t1"), []byte("mine")); err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(fabric.HeartbeatSubject("host-a"), []byte("hb")); err != nil {
		t.Fatal(err)
	}
	if m, err := outs.NextMsg(10 * time.Second); err != nil || m.Subject != fabric.OutSubject("host-a", "t1") || string(m.Data) != "mine" {
		t.Fatalf("first out message %v: %v", m, err)
	}
	if m, err := hbs.NextMsg(10 * time.Second); err != nil || m.Subject != fabric.HeartbeatSubject("host-a") {
		t.Fatalf("first heartbeat %v: %v", m, err)
	}
}

func TestHostIsolation(t *testing.T) {
	var book hostBook
	sa := book.add("host-a")
	book.add("host-b")
	s := startServer(t, &book)
	orch, err := s.Connect("orchestrator")
	if err != nil {
		t.Fatal(err)
	}
	defer orch.Close()
	a, aErrs := connectHost(t, s.URL(), "host-a", sa)
	checkIsolation(t, orch, a, aErrs)
}

func TestRefusedCredentials(t *testing.T) {
	var book hostBook
	sa := book.add("host-a")
	sb := book.add("host-b")
	s := startServer(t, &book)
	for _, tc := range []struct{ name, id, secret string }{
		{"wrong secret", "host-a", fabric.NewSecret()},
		{"other host's secret", "host-a", sb},
		{"unknown host", "host-c", sa},
		{"internal user name", "_orchestrator", sa},
		{"wildcard id", "host-*", sa},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			nc, err := fabric.ConnectHost(ctx, s.URL(), tc.id, tc.secret)
			if err == nil {
				nc.Close()
				t.Fatal("connected")
			}
			if tc.id == "host-a" || tc.id == "host-c" {
				if !errors.Is(err, fabric.ErrAuth) {
					t.Fatalf("error %v, want ErrAuth", err)
				}
			}
		})
	}
	if n := s.NumHosts(); n != 0 {
		t.Fatalf("%d host connections open after refusals", n)
	}
}

func TestConnectHostRetriesUntilServerUp(t *testing.T) {
	var book hostBook
	sa := book.add("host-a")
	// Find a free port, then start the server on it only after the host has
	// begun dialling.
	s := startServer(t, &book)
	url, port := s.URL(), s.Port()
	s.Close()
	done := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var nc *nats.Conn
	go func() {
		var err error
		nc, err = fabric.ConnectHost(ctx, url, "host-a", sa)
		done <- err
	}()
	s2, err := fabric.StartServer(fabric.ServerConfig{Listen: "127.0.0.1:" + strconv.Itoa(port), VerifyHost: book.verify})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	nc.Close()

	// A cancelled context stops the dial loop.
	s2.Close()
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, err := fabric.ConnectHost(ctx2, url, "host-a", sa); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}

func TestExternalServer(t *testing.T) {
	secretA, secretB := fabric.NewSecret(), fabric.NewSecret()
	orchPass := fabric.NewSecret()
	opts := &server.Options{
		Host:   "127.0.0.1",
		Port:   server.RANDOM_PORT,
		NoLog:  true,
		NoSigs: true,
		Users: []*server.User{
			{Username: "orchestrator", Password: orchPass},
			fabric.HostUser("host-a", secretA),
			fabric.HostUser("host-b", secretB),
		},
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("external server not ready")
	}
	if _, err := fabric.ConnectExternal(ns.ClientURL(), "orchestrator", "wrong"); !errors.Is(err, fabric.ErrAuth) {
		t.Fatalf("wrong orchestrator password: %v", err)
	}
	orch, err := fabric.ConnectExternal(ns.ClientURL(), "orchestrator", orchPass)
	if err != nil {
		t.Fatal(err)
	}
	defer orch.Close()
	a, aErrs := connectHost(t, ns.ClientURL(), "host-a", secretA)
	checkIsolation(t, orch, a, aErrs)
}

func TestSecrets(t *testing.T) {
	s := fabric.NewSecret()
	if s == fabric.NewSecret() {
		t.Fatal("two equal secrets")
	}
	h := fabric.HashSecret(s)
	if strings.Contains(h, s) {
		t.Fatal("hash contains the secret")
	}
	for _, tc := range []struct {
		name, hash, secret string
		want               bool
	}{
		{"match", h, s, true},
		{"other secret", h, fabric.NewSecret(), false},
		{"empty secret", fabric.HashSecret(""), "", false},
		{"not a hash", s, s, false},
		{"truncated hash", h[:len(h)-1], s, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fabric.CheckSecret(tc.hash, tc.secret); got != tc.want {
				t.Fatalf("CheckSecret = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestValidHostID(t *testing.T) {
	for id, want := range map[string]bool{
		"a": true, "host-1": true, "0abc-def": true,
		"": false, "Host": false, "a.b": false, "a*": false, "a>": false, "a b": false, "_orchestrator": false,
		strings.Repeat("a", fabric.MaxHostIDLen): true, strings.Repeat("a", fabric.MaxHostIDLen+1): false,
	} {
		if got := fabric.ValidHostID(id); got != want {
			t.Errorf("ValidHostID(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestReconnectDelay(t *testing.T) {
	for attempt := 0; attempt < 100; attempt++ {
		d := fabric.ReconnectDelay(attempt)
		want := fabric.BackoffBase << min(attempt, 20)
		if want > fabric.BackoffMax || attempt >= 20 {
			want = fabric.BackoffMax
		}
		if d < want/2 || d > want {
			t.Fatalf("attempt %d: delay %v outside [%v, %v]", attempt, d, want/2, want)
		}
	}
}

func TestCodec(t *testing.T) {
	b, err := fabric.Encode(&fabric.Hello{HostID: "h"})
	if err != nil {
		t.Fatal(err)
	}
	var h fabric.Hello
	if err := fabric.Decode(b, &h); err != nil || h.Version != fabric.ProtocolVersion || h.HostID != "h" {
		t.Fatalf("round trip %+v: %v", h, err)
	}
	for _, tc := range []struct {
		name string
		data string
		into any
		want error
	}{
		{"future task", `{"version":2,"id":"t"}`, &fabric.Task{}, fabric.ErrVersion},
		{"unversioned hello", `{"host_id":"h"}`, &fabric.Hello{}, fabric.ErrVersion},
		{"unknown field", `{"version":1,"id":"t","new_field":3}`, &fabric.Task{}, nil},
		{"chunk", `{"task_id":"t","seq":2,"done":true}`, &fabric.Chunk{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := fabric.Decode([]byte(tc.data), tc.into)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode = %v, want %v", err, tc.want)
			}
		})
	}
	if err := fabric.Decode([]byte("{"), &fabric.Chunk{}); err == nil {
		t.Fatal("bad JSON decoded")
	}
}

func TestReplyAllowed(t *testing.T) {
	for _, tc := range []struct {
		reply string
		want  bool
	}{
		{"_INBOX.host-a.abc.1", true},
		{"_INBOX.host-a.x", true},
		{"_INBOX.host-a.", false},
		{"_INBOX.host-a", false},
		{"_INBOX.host-ab.x", false},
		{"_INBOX.host-b.x", false},
		{"peerllm.host.host-b.task", false},
		{"_INBOX.host-a.>", false},
		{"", false},
	} {
		if got := fabric.ReplyAllowed("host-a", tc.reply); got != tc.want {
			t.Errorf("ReplyAllowed(host-a, %q) = %v, want %v", tc.reply, got, tc.want)
		}
	}
}

// TestReplySubjectIsNotChecked documents why ReplyAllowed exists: the server
// lets a host name any reply subject, including another host's task subject.
func TestReplySubjectIsNotChecked(t *testing.T) {
	var book hostBook
	sa := book.add("host-a")
	s := startServer(t, &book)
	orch, err := s.Connect("orchestrator")
	if err != nil {
		t.Fatal(err)
	}
	defer orch.Close()
	hellos, err := orch.SubscribeSync(fabric.HelloSubject("host-a"))
	if err != nil {
		t.Fatal(err)
	}
	if err := orch.Flush(); err != nil {
		t.Fatal(err)
	}
	a, _ := connectHost(t, s.URL(), "host-a", sa)
	if err := a.PublishRequest(fabric.HelloSubject("host-a"), fabric.TaskSubject("host-b"), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	m, err := hellos.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if m.Reply != fabric.TaskSubject("host-b") {
		t.Fatalf("reply %q", m.Reply)
	}
	if fabric.ReplyAllowed("host-a", m.Reply) {
		t.Fatal("a forged reply subject is allowed")
	}
}

// TestOneConnectionPerHost connects the same host twice: the older
// connection is closed by the server, so tasks are never delivered twice.
func TestOneConnectionPerHost(t *testing.T) {
	var book hostBook
	sa := book.add("host-a")
	s := startServer(t, &book)
	first, _ := connectHost(t, s.URL(), "host-a", sa, nats.NoReconnect())
	closed := make(chan struct{})
	first.SetClosedHandler(func(*nats.Conn) { close(closed) })
	second, _ := connectHost(t, s.URL(), "host-a", sa)
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the older connection was not closed")
	}
	if !second.IsConnected() {
		t.Fatal("the newer connection is not connected")
	}
	if n := s.NumHosts(); n != 1 {
		t.Fatalf("%d host connections", n)
	}
	// Another host is not affected.
	sb := book.add("host-b")
	b, _ := connectHost(t, s.URL(), "host-b", sb)
	if err := b.Flush(); err != nil || !second.IsConnected() {
		t.Fatalf("host-b: %v; host-a connected: %v", err, second.IsConnected())
	}
}

func TestStartServerErrors(t *testing.T) {
	var book hostBook
	s := startServer(t, &book)
	for _, listen := range []string{"127.0.0.1:" + strconv.Itoa(s.Port()), "127.0.0.1", "127.0.0.1:http", "127.0.0.1:70000"} {
		if s2, err := fabric.StartServer(fabric.ServerConfig{Listen: listen}); err == nil {
			s2.Close()
			t.Errorf("StartServer(%q) succeeded", listen)
		}
	}
}
