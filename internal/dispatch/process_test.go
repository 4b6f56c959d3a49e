package dispatch_test

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/agent"
	"github.com/peerllm/peerllm/internal/dispatch"
	"github.com/peerllm/peerllm/internal/engine/benchengine"
	"github.com/peerllm/peerllm/internal/registry"
)

// processOpts is the engine every host process serves.
var processOpts = benchengine.Options{Delay: 2 * time.Millisecond, Multibyte: true}

// TestMain doubles as a host process: with PEERLLM_TEST_AGENT_URL set, the
// test binary runs a real agent with the bench engine until it is killed.
func TestMain(m *testing.M) {
	if url := os.Getenv("PEERLLM_TEST_AGENT_URL"); url != "" {
		a, err := agent.New(agent.Config{URL: url, HostID: os.Getenv("PEERLLM_TEST_AGENT_ID"),
			Secret: os.Getenv("PEERLLM_TEST_AGENT_SECRET"), Engines: bench(processOpts), Capacity: 8})
		if err == nil {
			err = a.Run(context.Background())
		}
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// addProcessHost registers a host and runs its agent in a child process.
func (c *cluster) addProcessHost(spec registry.HostSpec) (string, *exec.Cmd) {
	c.t.Helper()
	ctx := context.Background()
	h, secret, err := c.reg.AddHost(ctx, spec)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PEERLLM_TEST_AGENT_URL="+c.srv.URL(),
		"PEERLLM_TEST_AGENT_ID="+h.ID, "PEERLLM_TEST_AGENT_SECRET="+secret)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	waitFor(c.t, "host process online", func() bool {
		got, err := c.reg.Host(ctx, h.ID)
		return err == nil && got.Live.Online
	})
	return h.ID, cmd
}

// TestFailoverWhenHostProcessKilled kills -9 the host process streaming the
// answer and checks the consumer's text is the uninterrupted run's.
func TestFailoverWhenHostProcessKilled(t *testing.T) {
	t.Parallel()
	c := newCluster(t, testConfig())
	// The enterprise host is the certain main for an enterprise request.
	victim, cmd := c.addProcessHost(registry.HostSpec{Name: "victim", Owner: "alice", Tier: registry.TierEnterprise})
	c.addHost("rescuer", "bob", bench(processOpts))
	req := greedy("kill the process", 80)
	var pid int
	r := run(t, context.Background(), c.d, dispatch.Request{Model: model, Engine: req, Mode: dispatch.ModeOff, Tier: registry.TierEnterprise}, func(n int) {
		if n >= 20 && pid == 0 {
			pid = cmd.Process.Pid
			cmd.Process.Kill() // SIGKILL: no drain, no goodbye
		}
	})
	if r.err != nil {
		t.Fatal(r.err)
	}
	if pid == 0 {
		t.Fatal("the host process was not killed")
	}
	if want := reference(t, req, processOpts); r.text != want {
		t.Fatalf("text differs from an uninterrupted run\n got %q\nwant %q", r.text, want)
	}
	if r.out.Failovers != 1 || r.out.HostTokens[victim] < 20 {
		t.Fatalf("outcome %+v: want one failover from %s after its 20 tokens", r.out, victim)
	}
	for name, want := range map[string]float64{
		"peerllm_dispatch_failovers_total": 1,
		"peerllm_dispatch_tokens_total":    float64(req.MaxTokens),
		"peerllm_dispatch_inflight_tasks":  0,
	} {
		if got := metricValue(t, c, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

// metricValue sums the samples of one metric family in the cluster's registry.
func metricValue(t *testing.T, c *cluster, name string) float64 {
	t.Helper()
	families, err := c.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			}
		}
		return sum
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}
