package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/peerllm/peerllm/internal/auth"
)

// demoRegions spreads demo hosts over regions so backups come from another
// failure domain.
var demoRegions = []string{"eu-west", "us-east", "ap-south", "eu-north", "us-west"}

// runDemo starts an orchestrator and several host agents as separate
// processes of this binary, prints how to call the API and stops them all
// on Ctrl-C.
func runDemo(ctx context.Context, args []string) error {
	fs := newFlags("demo")
	listen := fs.String("listen", "127.0.0.1:8080", "HTTP API address")
	natsListen := fs.String("nats-listen", "127.0.0.1:4222", "embedded NATS address")
	hosts := fs.Int("hosts", 3, "number of host agents")
	apiKey := fs.String("api-key", "", "use this exact API key (at least 32 characters; default: a new random one)")
	adminToken := fs.String("admin-token", "", "admin token (default $PEERLLM_ADMIN_TOKEN or a random one)")
	throttle := fs.Float64("throttle", 0, "cap each host at this many tokens per second (0: none), to watch failover")
	dataDir := fs.String("data-dir", "", "data directory (default: a temporary directory removed on exit)")
	modelsDir := fs.String("models-dir", "", "directory holding the model files (default $PEERLLM_MODELS, then the model cache)")
	model := fs.String("model", "stories260K", "model every host serves")
	engineName := fs.String("engine", "builtin", "host engine: builtin or bench")
	capacity := fs.Int("capacity", 2, "tasks each host runs at once")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *hosts < 1 || *hosts > 32 {
		return usagef("--hosts must be between 1 and 32")
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *capacity < 1 {
		return usagef("--capacity must be at least 1")
	}
	if !(*throttle >= 0) {
		return usagef("--throttle must not be negative")
	}
	if *engineName != "builtin" && *engineName != "bench" {
		return usagef("--engine must be builtin or bench")
	}
	if *apiKey != "" && len(*apiKey) < 32 {
		return usagef("--api-key must be at least 32 characters")
	}
	if *adminToken == "" {
		*adminToken = os.Getenv("PEERLLM_ADMIN_TOKEN")
	}
	if *adminToken == "" {
		*adminToken = auth.NewSecret("padm-")
	}
	if *modelsDir == "" {
		*modelsDir = os.Getenv("PEERLLM_MODELS")
	}
	if *modelsDir == "" {
		*modelsDir = localModelsDir()
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	if *dataDir == "" {
		d, err := os.MkdirTemp("", "peerllm-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dataDir = d
	} else if err := os.MkdirAll(*dataDir, 0o700); err != nil {
		return err
	}

	d := &demo{exe: exe, dir: *dataDir}
	defer d.stop()

	ready := filepath.Join(*dataDir, "serve.ready.json")
	os.Remove(ready)
	// The admin token goes through the environment, not argv, which any
	// local user can read in the process list.
	d.env = []string{"PEERLLM_ADMIN_TOKEN=" + *adminToken}
	// Every demo host gets a seat (seat gating would waitlist hosts past
	// three per region: docs/GOVERNANCE.md).
	_, err = d.start("serve", "serve", "--listen", *listen, "--nats-listen", *natsListen,
		"--data-dir", *dataDir, "--ready-file", ready, "--seats-min", strconv.Itoa(*hosts))
	d.env = nil
	if err != nil {
		return err
	}
	var addr struct{ API, NATS string }
	err = d.poll(ctx, 30*time.Second, "the orchestrator to start", func() error {
		b, err := os.ReadFile(ready)
		if err != nil {
			return err
		}
		return json.Unmarshal(b, &addr)
	})
	if err != nil {
		return err
	}
	admin := &adminClient{base: addr.API, token: *adminToken}
	var key struct{ Secret string }
	if _, err := admin.do(ctx, "POST", "/admin/v1/keys", map[string]string{"name": "demo", "account": "demo", "key": *apiKey}, &key); err != nil {
		return fmt.Errorf("create the demo API key: %w", err)
	}
	for i := 1; i <= *hosts; i++ {
		name := fmt.Sprintf("demo-host-%d", i)
		region := demoRegions[(i-1)%len(demoRegions)]
		var out struct{ Credentials json.RawMessage }
		if _, err := admin.do(ctx, "POST", "/admin/v1/hosts", map[string]string{
			"name": name, "owner": fmt.Sprintf("owner-%d", i), "region": region, "tier": "standard"}, &out); err != nil {
			return fmt.Errorf("register %s: %w", name, err)
		}
		creds := filepath.Join(*dataDir, name+".credentials.json")
		if err := os.WriteFile(creds, out.Credentials, 0o600); err != nil {
			return err
		}
		hargs := []string{"host", "--credentials", creds, "--model", *model, "--engine", *engineName, "--region", region,
			"--capacity", strconv.Itoa(*capacity)}
		if *modelsDir != "" {
			hargs = append(hargs, "--models-dir", *modelsDir)
		}
		if *throttle > 0 {
			hargs = append(hargs, "--throttle", strconv.FormatFloat(*throttle, 'f', -1, 64))
		}
		if _, err := d.start(name, hargs...); err != nil {
			return err
		}
	}
	err = d.poll(ctx, 60*time.Second, fmt.Sprintf("%d hosts to serve %s", *hosts, *model), func() error {
		n, err := servingHosts(ctx, addr.API, key.Secret, *model)
		if err == nil && n < *hosts {
			err = fmt.Errorf("%d of %d hosts connected", n, *hosts)
		}
		return err
	})
	if err != nil {
		return err
	}
	fmt.Printf(`
PeerLLM demo is running: 1 orchestrator and %d hosts serving %s.

  API:          %s/v1
  API key:      %s
  Admin token:  %s
  Logs:         %s

Try it:

  curl %s/v1/completions \
    -H "Authorization: Bearer %s" -H "Content-Type: application/json" \
    -d '{"model":"%s","prompt":"Once upon a time","max_tokens":64,"stream":true}'

  PEERLLM_ADMIN_TOKEN=%s %s admin --server %s hosts list

Press Ctrl-C to stop.
`, *hosts, *model, addr.API, key.Secret, *adminToken, *dataDir, addr.API, key.Secret, *model, *adminToken, exe, addr.API)

	select {
	case <-ctx.Done():
		fmt.Println("\nstopping…")
		return nil
	case p := <-d.exited:
		return fmt.Errorf("%s exited unexpectedly (%v); its log: %s", p.name, p.err, p.logPath)
	}
}

// demo owns the child processes.
type demo struct {
	exe    string
	dir    string
	env    []string // added to the next child's environment
	procs  []*child
	exited chan *child
}

type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error
}

// start runs this binary with args, logging to <dir>/<name>.log.
func (d *demo) start(name string, args ...string) (*child, error) {
	if d.exited == nil {
		d.exited = make(chan *child, 64)
	}
	logPath := filepath.Join(d.dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	c := &child{name: name, logPath: logPath, done: make(chan struct{})}
	c.cmd = exec.Command(d.exe, args...)
	c.cmd.Stdout, c.cmd.Stderr = f, f
	c.cmd.Env = append(os.Environ(), d.env...)
	c.cmd.SysProcAttr = childProcAttr()
	if err := c.cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	d.procs = append(d.procs, c)
	go func() {
		c.err = c.cmd.Wait()
		f.Close()
		close(c.done)
		d.exited <- c
	}()
	return c, nil
}

// poll retries cond until it succeeds, a child dies, ctx ends or timeout.
func (d *demo) poll(ctx context.Context, timeout time.Duration, what string, cond func() error) error {
	deadline := time.Now().Add(timeout)
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waited %v for %s: %v (logs in %s)", timeout, what, err, d.dir)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case c := <-d.exited:
			return fmt.Errorf("%s exited while waiting for %s (%v):\n%s", c.name, what, c.err, tail(c.logPath, 2000))
		case <-t.C:
		}
	}
}

// stop sends SIGTERM to the hosts and waits for them, then does the same
// for the orchestrator, so hosts leave before the server they dial goes
// away. A child still running 10 s after SIGTERM is killed.
func (d *demo) stop() {
	if len(d.procs) == 0 {
		return
	}
	for _, c := range d.procs[1:] {
		c.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, c := range d.procs[1:] {
		waitChild(c, 10*time.Second)
	}
	d.procs[0].cmd.Process.Signal(syscall.SIGTERM)
	waitChild(d.procs[0], 10*time.Second)
}

func waitChild(c *child, grace time.Duration) {
	select {
	case <-c.done:
	case <-time.After(grace):
		c.cmd.Process.Kill()
		<-c.done
	}
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// servingHosts asks /v1/models how many hosts serve model.
func servingHosts(ctx context.Context, api, key, model string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", api+"/v1/models", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return 0, errors.New(strings.TrimSpace(string(b)))
	}
	var out struct {
		Data []struct {
			ID    string `json:"id"`
			Hosts int    `json:"hosts"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return 0, err
	}
	for _, m := range out.Data {
		if m.ID == model {
			return m.Hosts, nil
		}
	}
	return 0, nil
}

// localModelsDir finds a models folder next to the working directory for a
// checkout of the project: ./models, or ../shared/models where the project's
// shared test data lives beside the checkout. Empty when neither holds the
// tiny model; the model cache and the download take over then.
func localModelsDir() string {
	for _, d := range []string{"models", filepath.Join("..", "shared", "models")} {
		if _, err := os.Stat(filepath.Join(d, "stories260K.gguf")); err == nil {
			if abs, err := filepath.Abs(d); err == nil {
				return abs
			}
		}
	}
	return ""
}
