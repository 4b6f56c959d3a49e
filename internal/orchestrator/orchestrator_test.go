package orchestrator_test

import (
	"context"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/orchestrator"
)

// TestStartClose starts a whole orchestrator in process (real SQLite, real
// embedded NATS, real HTTP on port 0), uses it, closes it, and checks that no
// goroutine outlives it.
func TestStartClose(t *testing.T) {
	before := runtime.NumGoroutine()
	dir := t.TempDir()
	start := func() *orchestrator.Orchestrator {
		o, err := orchestrator.Start(context.Background(), orchestrator.Config{
			Listen: "127.0.0.1:0", NATSListen: "127.0.0.1:0", DataDir: dir, AdminToken: "",
		})
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	o := start()
	token := o.GeneratedAdminToken()
	if token == "" {
		t.Fatal("no admin token generated on the first start")
	}
	get := func(o *orchestrator.Orchestrator, path, bearer string) int {
		req, _ := http.NewRequest("GET", o.APIURL()+path, nil)
		req.Header.Set("Authorization", "Bearer "+bearer)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := get(o, "/healthz", ""); c != 200 {
		t.Fatalf("healthz %d", c)
	}
	if c := get(o, "/admin/v1/keys", token); c != 200 {
		t.Fatalf("admin with the generated token: %d", c)
	}
	if !strings.HasPrefix(o.NATSURL(), "nats://127.0.0.1:") {
		t.Fatalf("nats url %q", o.NATSURL())
	}
	o.Close()
	o.Close() // twice is fine

	// A restart on the same data keeps the admin token and shows none.
	o = start()
	if o.GeneratedAdminToken() != "" {
		t.Fatal("a second start generated another admin token")
	}
	if c := get(o, "/admin/v1/keys", token); c != 200 {
		t.Fatalf("admin after restart: %d", c)
	}
	o.Close()
	http.DefaultClient.CloseIdleConnections()

	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("%d goroutines before, %d after Close:\n%s", before, runtime.NumGoroutine(), buf[:n])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
