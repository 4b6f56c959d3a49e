package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/peerllm/peerllm/internal/agent"
	"github.com/peerllm/peerllm/internal/engine"
	"github.com/peerllm/peerllm/internal/engine/benchengine"
	"github.com/peerllm/peerllm/internal/fabric"
)

// TestHostCommand runs `peerllm host --engine bench` in-process against a
// real embedded NATS server: it says Hello with the model, serves a task,
// and a cancelled context (SIGTERM in main) ends it with a nil error.
func TestHostCommand(t *testing.T) {
	secret := fabric.NewSecret()
	srv, err := fabric.StartServer(fabric.ServerConfig{Listen: "127.0.0.1:0", VerifyHost: func(id, s string) bool {
		return id == "cli-host" && s == secret
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	nc, err := srv.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	hellos := make(chan fabric.Hello, 4)
	if _, err := nc.Subscribe(fabric.HelloSubject("cli-host"), func(m *nats.Msg) {
		var h fabric.Hello
		_ = fabric.Decode(m.Data, &h)
		b, _ := fabric.Encode(fabric.HelloAck{OK: true, HeartbeatEvery: time.Second})
		_ = m.Respond(b)
		hellos <- h
	}); err != nil {
		t.Fatal(err)
	}
	creds := filepath.Join(t.TempDir(), "creds.json")
	b, _ := json.Marshal(hostCredentials{URL: srv.URL(), HostID: "cli-host", Secret: secret})
	if err := os.WriteFile(creds, b, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- runHost(ctx, []string{"--credentials", creds, "--engine", "bench", "--model", "bench-x",
			"--region", "eu-west", "--capacity", "2", "--log-level", "error"})
	}()
	var hello fabric.Hello
	select {
	case hello = <-hellos:
	case err := <-errc:
		t.Fatalf("host exited: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("no hello")
	}
	if len(hello.Models) != 1 || hello.Models[0].Name != "bench-x" || hello.Models[0].Engine != "bench" ||
		hello.Region != "eu-west" || hello.Capacity != 2 || hello.Tier != "standard" {
		t.Fatalf("hello %+v", hello)
	}
	sub, err := nc.SubscribeSync(fabric.OutSubject("cli-host", "t1"))
	if err != nil {
		t.Fatal(err)
	}
	tb, _ := fabric.Encode(&fabric.Task{ID: "t1", Model: "bench-x", Request: engine.Request{Prompt: "hi", MaxTokens: 3}})
	if err := nc.Publish(fabric.TaskSubject("cli-host"), tb); err != nil {
		t.Fatal(err)
	}
	tokens := 0 // tokens produced together may share a chunk
	for seq := 0; ; seq++ {
		m, err := sub.NextMsg(20 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var c fabric.Chunk
		if err := fabric.Decode(m.Data, &c); err != nil || c.Seq != seq || c.Error != "" {
			t.Fatalf("chunk %+v: %v", c, err)
		}
		tokens += len(c.Tokens)
		if c.Done {
			if tokens != 3 {
				t.Fatalf("done after %d tokens", tokens)
			}
			break
		}
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("host after stop: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("host did not stop")
	}
}

func TestHostCommandUsage(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "creds.json")
	if err := os.WriteFile(creds, []byte(`{"url":"nats://127.0.0.1:1","host_id":"h","secret":"s"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no orchestrator", []string{"--host-id", "h", "--secret", "s", "--model", "m"}, "--orchestrator"},
		{"no model", []string{"--credentials", creds}, "--model"},
		{"bad tier", []string{"--credentials", creds, "--model", "m", "--tier", "gold"}, "--tier"},
		{"zero capacity", []string{"--credentials", creds, "--model", "m", "--capacity", "0"}, "--capacity"},
		{"openai engine without its server", []string{"--credentials", creds, "--model", "m", "--engine", "openai"}, "needs --engine-url"},
		{"unknown engine", []string{"--credentials", creds, "--model", "m", "--engine", "vllm2"}, "--engine must be"},
		{"unknown engine", []string{"--credentials", creds, "--model", "m", "--engine", "gpu"}, "--engine"},
		{"http URL for NATS", []string{"--orchestrator", "http://127.0.0.1:8080", "--host-id", "h", "--secret", "s", "--model", "m"}, "scheme must be nats"},
		{"second URL of a list bad", []string{"--orchestrator", "nats://a:4222,https://b", "--host-id", "h", "--secret", "s", "--model", "m"}, "scheme must be nats"},
		{"NaN throttle", []string{"--credentials", creds, "--model", "m", "--throttle", "NaN"}, "--throttle"},
		{"negative context", []string{"--credentials", creds, "--model", "m", "--context", "-5"}, "--context"},
		{"engine URL without scheme", []string{"--credentials", creds, "--model", "m", "--engine", "openai", "--engine-url", "notaurl"}, "--engine-url must be"},
		{"missing credentials file", []string{"--credentials", filepath.Join(dir, "nope.json"), "--model", "m"}, "credentials"},
		{"unknown model name", []string{"--credentials", creds, "--model", "no-such-model-xyz", "--models-dir", dir}, "no-such-model-xyz"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := runHost(ctx, tc.args)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestModelName(t *testing.T) {
	for arg, want := range map[string]string{
		"stories260K":                  "stories260K",
		"/models/stories260K.gguf":     "stories260K",
		"dir/stories15M.bin":           "stories15M",
		"tinyllamas/stories260K":       "stories260K",
		"llama-3.2-1b-instruct-q4_k_m": "llama-3.2-1b-instruct-q4_k_m",
	} {
		if got := modelName(arg); got != want {
			t.Errorf("modelName(%q) = %q, want %q", arg, got, want)
		}
	}
}

func TestHostMetricsEndpoint(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, err := agent.New(agent.Config{URL: "nats://127.0.0.1:1", HostID: "h", Secret: "s",
		Engines: map[string]engine.Engine{"b": benchengine.New(benchengine.Options{})}, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	addr, stop, err := serveHostMetrics("127.0.0.1:0", reg, a, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "peerllm_host_in_flight 0") ||
		!strings.Contains(body, `peerllm_host_tasks_total{result="done"} 0`) {
		t.Fatalf("/metrics: %d\n%s", code, body)
	}
	// Not connected (Run was never called): unhealthy.
	if code, body := get("/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, `"connected":false`) {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	if _, _, err := serveHostMetrics(addr, reg, a, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("second listener on the same address")
	}
}

func TestCAConfig(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(good, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf, err := caConfig(good)
	if err != nil || conf.RootCAs == nil || conf.MinVersion < tls.VersionTLS12 {
		t.Fatalf("caConfig: %+v, %v", conf, err)
	}
	for _, p := range []string{bad, filepath.Join(dir, "missing.pem")} {
		if _, err := caConfig(p); err == nil {
			t.Fatalf("caConfig(%s) accepted", p)
		}
	}
}
