package dispatch_test

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/peerllm/peerllm/internal/dispatch"
	"github.com/peerllm/peerllm/internal/engine/benchengine"
	"github.com/peerllm/peerllm/internal/fabric"
	"github.com/peerllm/peerllm/internal/registry"
	"github.com/peerllm/peerllm/internal/store"
)

// TestRunLeavesNoGoroutines starts and stops a dispatcher that served
// requests (with probes, hedges and cancellations) on a long-lived NATS
// connection, and checks every goroutine it started is gone.
func TestRunLeavesNoGoroutines(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "peerllm.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reg, err := registry.Open(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := fabric.StartServer(fabric.ServerConfig{Listen: "127.0.0.1:0", VerifyHost: reg.VerifyHost})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	nc, err := srv.Connect("leak-test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// The host side runs in a cluster of its own making; only the
	// dispatcher's goroutines are counted.
	c := &cluster{t: t, srv: srv, reg: reg}
	before := runtime.NumGoroutine()

	d, err := dispatch.New(testConfig(), nc, reg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	c.d = d
	h := c.addHostCap("a", "alice", bench(benchengine.Options{}), 4)
	for _, mode := range []string{dispatch.ModeParallel, dispatch.ModeHedged, dispatch.ModeOff} {
		if r := run(t, ctx, d, dispatch.Request{Model: model, Engine: greedy("leak", 40), Mode: mode}, nil); r.err != nil {
			t.Fatal(r.err)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	run(t, cctx, d, dispatch.Request{Model: model, Engine: greedy("leak", 2000)}, func(n int) {
		if n >= 5 { // a delta may carry several tokens
			cancel()
		}
	})
	h.cancel()
	<-h.done
	h.proxy.Cut()
	h.proxy.wg.Wait()
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "dispatcher goroutines gone", func() bool { return runtime.NumGoroutine() <= before })
}
