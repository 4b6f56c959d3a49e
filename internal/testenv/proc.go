package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var build struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Main runs the tests of a package that uses Binary and removes the built
// binary afterwards. Call it from TestMain: func TestMain(m *testing.M) { testenv.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// Binary builds cmd/peerllm once per test process and returns its path.
// PEERLLM_TEST_RACE=1 builds it with the race detector.
func Binary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		root, err := ModuleRoot()
		if err != nil {
			build.err = err
			return
		}
		build.dir, err = os.MkdirTemp("", "peerllm-test-bin-")
		if err != nil {
			build.err = err
			return
		}
		build.path = filepath.Join(build.dir, "peerllm")
		args := []string{"build", "-o", build.path}
		if os.Getenv("PEERLLM_TEST_RACE") == "1" {
			args = append(args, "-race")
		}
		args = append(args, "./cmd/peerllm")
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatalf("build peerllm: %v", build.err)
	}
	return build.path
}

// handedOut holds the ports FreePort has returned in this test binary: the
// kernel may give a just-closed port out again at once, so two calls in a
// row could otherwise return the same port.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago and
// that no earlier call returned, for a process that must come back on the
// same port after a restart. (Processes that need not should listen on port
// 0 and report the address, as hosts do for their metrics.)
func FreePort(t testing.TB) int {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if !handedOut.ports[port] {
			handedOut.ports[port] = true
			return port
		}
	}
	t.Fatal("free port: the kernel kept returning ports already handed out")
	return 0
}

// SyncBuffer is a byte buffer safe for concurrent use: a process's combined
// output, or the bytes a proxy saw.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Proc is a real peerllm process started by a test.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	out  *SyncBuffer
	done chan struct{}
	err  error // Wait's result, valid after done is closed
}

// StartProc starts the peerllm binary with args. Its stdout and stderr are
// captured (Logs) and printed when the test fails. The test's cleanup stops
// it (SIGCONT, SIGTERM, then SIGKILL after 10 s).
func StartProc(t testing.TB, name string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Name: name, out: &SyncBuffer{}, done: make(chan struct{})}
	p.Cmd = exec.Command(Binary(t), args...)
	p.Cmd.Stdout = p.out
	p.Cmd.Stderr = p.out
	p.Cmd.Env = append(os.Environ(), "PEERLLM_MODELS="+ModelsDir(t))
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.Cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Terminate(10 * time.Second)
		if t.Failed() {
			logs := p.Logs()
			if len(logs) > 20000 {
				logs = "…" + logs[len(logs)-20000:]
			}
			t.Logf("--- %s (%v) output:\n%s", name, args, logs)
		}
	})
	return p
}

// Logs returns everything the process printed so far.
func (p *Proc) Logs() string { return p.out.String() }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Done is closed when the process has ended.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is the process's exit error; valid once Done is closed.
func (p *Proc) Err() error { <-p.done; return p.err }

// Signal sends sig to the process (ignored if it has ended).
func (p *Proc) Signal(sig syscall.Signal) {
	if !p.Exited() {
		p.Cmd.Process.Signal(sig)
	}
}

// Kill sends SIGKILL and waits for the process to end.
func (p *Proc) Kill() {
	p.Signal(syscall.SIGKILL)
	<-p.done
}

// Pause freezes the process with SIGSTOP; Resume continues it.
func (p *Proc) Pause()  { p.Signal(syscall.SIGSTOP) }
func (p *Proc) Resume() { p.Signal(syscall.SIGCONT) }

// Terminate sends SIGTERM and waits up to grace for the process to end,
// then kills it. It returns the exit error of a process that ended on its own.
func (p *Proc) Terminate(grace time.Duration) error {
	if p.Exited() {
		return p.err
	}
	p.Signal(syscall.SIGCONT)
	p.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(grace):
		p.Kill()
		return fmt.Errorf("%s did not stop within %v after SIGTERM", p.Name, grace)
	}
}

// Eventually polls cond every 20 ms until it returns nil or the deadline
// passes, then fails the test with cond's last error.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %v: %v", what, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Orchestrator is a `peerllm serve` process.
type Orchestrator struct {
	*Proc
	API        string // e.g. http://127.0.0.1:41234
	NATS       string // e.g. nats://127.0.0.1:41235
	AdminToken string
	DataDir    string
	NATSPort   int
}

// OrchestratorOptions configure StartOrchestrator. Zero values pick fresh
// ones (a temp data dir, free ports, a random admin token).
type OrchestratorOptions struct {
	DataDir    string
	AdminToken string
	APIPort    int // 0: any
	NATSPort   int // 0: any
	Args       []string
}

// StartOrchestrator starts `peerllm serve` on 127.0.0.1 and waits until it
// serves HTTP.
func StartOrchestrator(t testing.TB, opt OrchestratorOptions) *Orchestrator {
	t.Helper()
	if opt.DataDir == "" {
		opt.DataDir = t.TempDir()
	}
	if opt.AdminToken == "" {
		opt.AdminToken = "test-admin-token-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	ready := filepath.Join(t.TempDir(), "ready.json")
	args := []string{"serve",
		"--listen", "127.0.0.1:" + strconv.Itoa(opt.APIPort),
		"--nats-listen", "127.0.0.1:" + strconv.Itoa(opt.NATSPort),
		"--data-dir", opt.DataDir, "--admin-token", opt.AdminToken,
		"--ready-file", ready, "--log-format", "json"}
	args = append(args, opt.Args...)
	o := &Orchestrator{Proc: StartProc(t, "serve", args...), AdminToken: opt.AdminToken, DataDir: opt.DataDir}
	var r struct{ API, NATS string }
	Eventually(t, 60*time.Second, "orchestrator ready", func() error {
		if o.Exited() {
			t.Fatalf("orchestrator exited: %v\n%s", o.Err(), o.Logs())
		}
		b, err := os.ReadFile(ready)
		if err != nil {
			return err
		}
		return json.Unmarshal(b, &r)
	})
	o.API, o.NATS = r.API, r.NATS
	if i := strings.LastIndexByte(r.NATS, ':'); i >= 0 {
		o.NATSPort, _ = strconv.Atoi(r.NATS[i+1:])
	}
	return o
}

// Do sends an HTTP request to the orchestrator with bearer token and a JSON
// body (nil for none), and decodes a JSON answer into out (if non-nil). It
// returns the status code.
func (o *Orchestrator) Do(t testing.TB, method, path, token string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, o.API+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, path, err)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode
}

// CreateKey creates a consumer API key through the admin API.
func (o *Orchestrator) CreateKey(t testing.TB, name string) string {
	t.Helper()
	var out struct{ Secret string }
	if code := o.Do(t, "POST", "/admin/v1/keys", o.AdminToken, map[string]string{"name": name}, &out); code != http.StatusCreated {
		t.Fatalf("create key: HTTP %d", code)
	}
	return out.Secret
}

// Credentials are a host's connection credentials.
type Credentials struct {
	URL    string `json:"url"`
	HostID string `json:"host_id"`
	Secret string `json:"secret"`
}

// AddHost registers a host through the admin API.
func (o *Orchestrator) AddHost(t testing.TB, name, owner, region string) Credentials {
	t.Helper()
	var out struct{ Credentials Credentials }
	code := o.Do(t, "POST", "/admin/v1/hosts", o.AdminToken, map[string]string{"name": name, "owner": owner, "region": region}, &out)
	if code != http.StatusCreated {
		t.Fatalf("add host: HTTP %d", code)
	}
	return out.Credentials
}

// ModelHosts returns how many hosts serve model now (0 if not listed).
func (o *Orchestrator) ModelHosts(t testing.TB, key, model string) int {
	t.Helper()
	var out struct {
		Data []struct {
			ID    string `json:"id"`
			Hosts int    `json:"hosts"`
		} `json:"data"`
	}
	if code := o.Do(t, "GET", "/v1/models", key, nil, &out); code != http.StatusOK {
		return 0
	}
	for _, m := range out.Data {
		if m.ID == model {
			return m.Hosts
		}
	}
	return 0
}

// WaitHosts waits until at least n hosts serve model.
func (o *Orchestrator) WaitHosts(t testing.TB, key, model string, n int) {
	t.Helper()
	Eventually(t, 60*time.Second, fmt.Sprintf("%d hosts serving %s", n, model), func() error {
		if o.Exited() {
			t.Fatalf("orchestrator exited: %v", o.Err())
		}
		if got := o.ModelHosts(t, key, model); got < n {
			return fmt.Errorf("%d hosts", got)
		}
		return nil
	})
}

// Host is a `peerllm host` process.
type Host struct {
	*Proc
	Creds Credentials
}

// metricsLine finds the address in a host's "metrics listening" log line,
// in text or JSON log format.
var metricsLine = regexp.MustCompile(`metrics listening.*?addr"?[=:]"?([0-9.]+:[0-9]+)`)

// MetricsAddr returns host:port of the agent's /metrics, read from its
// "metrics listening" log line: hosts bind port 0, so hosts started together
// never race for a port. It waits up to 10 s for the line (printed before
// the host connects) and returns "" if it never comes.
func (h *Host) MetricsAddr() string {
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m := metricsLine.FindStringSubmatch(h.Logs()); m != nil {
			return m[1]
		}
		if h.Exited() || time.Now().After(deadline) {
			return ""
		}
	}
}

// HostOptions configure StartHost.
type HostOptions struct {
	Name, Owner, Region string
	Engine              string  // default "builtin"
	Model               string  // default "stories260K"
	Throttle            float64 // tokens/s; 0 none
	Capacity            int
	Args                []string
	// Exec wraps the command: the host runs as Exec[0] Exec[1:]... peerllm host ...
	// (a recorder); empty runs the binary directly.
	Exec []string
}

// StartHost registers a host and starts `peerllm host` for it.
func (o *Orchestrator) StartHost(t testing.TB, opt HostOptions) *Host {
	t.Helper()
	if opt.Owner == "" {
		opt.Owner = opt.Name + "-owner"
	}
	creds := o.AddHost(t, opt.Name, opt.Owner, opt.Region)
	return o.RunHost(t, creds, opt)
}

// RunHost starts `peerllm host` with existing credentials.
func (o *Orchestrator) RunHost(t testing.TB, creds Credentials, opt HostOptions) *Host {
	t.Helper()
	if opt.Engine == "" {
		opt.Engine = "builtin"
	}
	if opt.Model == "" {
		opt.Model = "stories260K"
	}
	dir := t.TempDir()
	credFile := filepath.Join(dir, "credentials.json")
	b, _ := json.Marshal(creds)
	if err := os.WriteFile(credFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"host", "--credentials", credFile, "--model", opt.Model, "--models-dir", ModelsDir(t),
		"--engine", opt.Engine, "--metrics-listen", "127.0.0.1:0"}
	if opt.Region != "" {
		args = append(args, "--region", opt.Region)
	}
	if opt.Throttle > 0 {
		args = append(args, "--throttle", strconv.FormatFloat(opt.Throttle, 'f', -1, 64))
	}
	if opt.Capacity > 0 {
		args = append(args, "--capacity", strconv.Itoa(opt.Capacity))
	}
	args = append(args, opt.Args...)
	var p *Proc
	if len(opt.Exec) > 0 {
		p = startWrapped(t, opt.Name, opt.Exec, args)
	} else {
		p = StartProc(t, "host "+opt.Name, args...)
	}
	return &Host{Proc: p, Creds: creds}
}

func startWrapped(t testing.TB, name string, wrap, args []string) *Proc {
	t.Helper()
	full := append(append(append([]string{}, wrap[1:]...), Binary(t)), args...)
	p := &Proc{Name: name, out: &SyncBuffer{}, done: make(chan struct{})}
	p.Cmd = exec.Command(wrap[0], full...)
	p.Cmd.Stdout, p.Cmd.Stderr = p.out, p.out
	p.Cmd.Env = append(os.Environ(), "PEERLLM_MODELS="+ModelsDir(t))
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.Cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.Terminate(10 * time.Second) })
	return p
}

// Metric returns the value of the first sample of the Prometheus series
// name (optionally with labels text like `{reason="x"}` as prefix match) at
// url, or an error.
func Metric(url, name string) (float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "#") || !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(rest)
		return strconv.ParseFloat(f[len(f)-1], 64)
	}
	return 0, fmt.Errorf("metric %s not found at %s", name, url)
}
