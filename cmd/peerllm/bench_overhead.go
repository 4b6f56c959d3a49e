package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/peerllm/peerllm/internal/auth"
	"github.com/peerllm/peerllm/internal/engine"
	"github.com/peerllm/peerllm/internal/engine/benchengine"
	"github.com/peerllm/peerllm/internal/governance"
	"github.com/peerllm/peerllm/internal/orchestrator"
)

// benchOverhead is `peerllm bench overhead`: what the network adds to an
// instant engine. It starts, as real processes on 127.0.0.1, an orchestrator
// (embedded NATS, SQLite in a temporary directory, the real HTTP API, no
// safety, privacy or billing stages: the network alone) and host agents
// running the bench engine, streams requests over real HTTP and compares
// them with the bench engine called directly in this process.
func benchOverhead(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("bench overhead")
	requests := fs.Int("requests", 500, "streamed requests for the latency and CPU figures")
	conc := fs.Int("concurrency", 1, "requests in flight at once for the latency and CPU figures")
	tokens := fs.Int("tokens", 32, "tokens per request")
	mode := fs.String("mode", "parallel", "redundancy: parallel, hedged or off")
	hosts := fs.Int("hosts", 3, "instant bench hosts")
	streams := fs.Int("streams", 1000, "concurrent slow streams for the memory and cancellation figures (0: skip)")
	failovers := fs.Int("failovers", 3, "host deaths for the failover figure (0: skip)")
	child := fs.String("orchestrator-child", "", "internal: run the benchmark's orchestrator with this data directory")
	cpuProfile := fs.String("cpuprofile", "", "write the orchestrator's CPU profile (the whole run) to this file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *child != "" {
		return benchOrchestrator(ctx, *child, *cpuProfile)
	}
	switch {
	case *mode != "parallel" && *mode != "hedged" && *mode != "off":
		return usagef("--mode must be parallel, hedged or off")
	case *requests < 1 || *conc < 1 || *tokens < 1 || *hosts < 2:
		return usagef("--requests, --concurrency and --tokens must be positive, --hosts at least 2")
	case *streams < 0 || *failovers < 0:
		return usagef("--streams and --failovers must not be negative")
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	dir, err := os.MkdirTemp("", "peerllm-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if *cpuProfile != "" {
		if *cpuProfile, err = filepath.Abs(*cpuProfile); err != nil {
			return err
		}
	}
	b := &overheadBench{demo: &demo{exe: exe, dir: dir}, out: stdout, mode: *mode, tokens: *tokens, profile: *cpuProfile}
	defer b.demo.stop()
	if err := b.start(ctx, *hosts, *streams); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "peerllm bench overhead: orchestrator pid %d and %d instant bench hosts as processes on 127.0.0.1, mode %s, %d tokens per request\n",
		b.pid, *hosts, *mode, *tokens)
	if err := b.latency(ctx, *requests, *conc); err != nil {
		return err
	}
	if *streams > 0 {
		if err := b.memory(ctx, *streams); err != nil {
			return err
		}
	}
	if *failovers > 0 {
		if err := b.failover(ctx, *failovers); err != nil {
			return err
		}
	}
	return nil
}

// benchOrchestrator is the benchmark's orchestrator process: the network
// alone, without screening or billing stages.
func benchOrchestrator(ctx context.Context, dir, profile string) error {
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	o, err := orchestrator.Start(ctx, orchestrator.Config{
		Listen: "127.0.0.1:0", NATSListen: "127.0.0.1:0", DataDir: dir,
		AdminToken: os.Getenv("PEERLLM_ADMIN_TOKEN"), Log: slog.New(slog.DiscardHandler),
		// Every bench host works: none waits for a regional seat.
		Governance: orchestrator.GovernanceConfig{Policy: governance.Policy{MinSeats: 1000}},
	})
	if err != nil {
		return err
	}
	err = writeReadyFile(filepath.Join(dir, "ready.json"), map[string]any{"api": o.APIURL(), "nats": o.NATSURL(), "pid": os.Getpid()})
	if err != nil {
		o.Close()
		return err
	}
	return o.Wait(ctx)
}

// overheadBench holds the benchmark's processes and client.
type overheadBench struct {
	demo    *demo
	out     io.Writer
	mode    string
	tokens  int
	api     string
	pid     int
	key     string
	admin   *adminClient
	client  *http.Client
	nhosts  int
	profile string
}

const (
	instantModel = "instant"
	slowModel    = "slow"
	// slowDelay keeps the memory benchmark's streams open while measured.
	slowDelay = time.Second
)

func (b *overheadBench) start(ctx context.Context, hosts, streams int) error {
	token := auth.NewSecret("padm-")
	b.demo.env = []string{"PEERLLM_ADMIN_TOKEN=" + token}
	args := []string{"bench", "overhead", "--orchestrator-child", b.demo.dir}
	if b.profile != "" {
		args = append(args, "--cpuprofile", b.profile)
	}
	_, err := b.demo.start("orchestrator", args...)
	b.demo.env = nil
	if err != nil {
		return err
	}
	var ready struct {
		API string
		PID int
	}
	err = b.demo.poll(ctx, 30*time.Second, "the orchestrator to start", func() error {
		data, err := os.ReadFile(filepath.Join(b.demo.dir, "ready.json"))
		if err != nil {
			return err
		}
		return json.Unmarshal(data, &ready)
	})
	if err != nil {
		return err
	}
	b.api, b.pid = ready.API, ready.PID
	b.admin = &adminClient{base: b.api, token: token}
	var key struct{ Secret string }
	if _, err := b.admin.do(ctx, "POST", "/admin/v1/keys", map[string]string{"name": "bench", "account": "bench"}, &key); err != nil {
		return fmt.Errorf("create the API key: %w", err)
	}
	b.key = key.Secret
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost, tr.MaxConnsPerHost = 0, 4096, 0
	b.client = &http.Client{Transport: tr}
	for i := 0; i < hosts; i++ {
		if _, err := b.host(ctx, instantModel, 64, 0, ""); err != nil {
			return err
		}
	}
	if streams > 0 {
		for i := 0; i < 2; i++ {
			if _, err := b.host(ctx, slowModel, streams+16, slowDelay, ""); err != nil {
				return err
			}
		}
	}
	if err := b.waitServing(ctx, instantModel, hosts); err != nil {
		return err
	}
	if streams > 0 {
		return b.waitServing(ctx, slowModel, 2)
	}
	return nil
}

// host registers a host and starts it as a process serving the bench engine
// under model.
func (b *overheadBench) host(ctx context.Context, model string, capacity int, delay time.Duration, metrics string) (*child, error) {
	b.nhosts++
	name := fmt.Sprintf("%s-%d", model, b.nhosts)
	var out struct{ Credentials json.RawMessage }
	if _, err := b.admin.do(ctx, "POST", "/admin/v1/hosts", map[string]string{
		"name": name, "owner": "owner-" + strconv.Itoa(b.nhosts), "region": "local", "tier": "standard"}, &out); err != nil {
		return nil, fmt.Errorf("register %s: %w", name, err)
	}
	creds := filepath.Join(b.demo.dir, name+".credentials.json")
	if err := os.WriteFile(creds, out.Credentials, 0o600); err != nil {
		return nil, err
	}
	args := []string{"host", "--credentials", creds, "--engine", "bench", "--model", model,
		"--capacity", strconv.Itoa(capacity), "--bench-delay", delay.String(), "--log-level", "warn"}
	if metrics != "" {
		args = append(args, "--metrics-listen", metrics)
	}
	return b.demo.start(name, args...)
}

func (b *overheadBench) waitServing(ctx context.Context, model string, n int) error {
	return b.demo.poll(ctx, 60*time.Second, fmt.Sprintf("%d hosts to serve %s", n, model), func() error {
		got, err := servingHosts(ctx, b.api, b.key, model)
		if err == nil && got < n {
			err = fmt.Errorf("%d of %d hosts connected", got, n)
		}
		return err
	})
}

// streamTrace is what a consumer saw of one streamed request.
type streamTrace struct {
	ttft   time.Duration
	gaps   []time.Duration // between consecutive tokens (0 within one event)
	text   strings.Builder
	events int
	tokens int // tokens received, from the expected tokens' texts
	done   bool
}

// tokenEnds is the cumulative byte length of the bench engine's greedy
// answer after each token: the consumer's text length says how many tokens
// an event completed (a delta may carry several).
func tokenEnds(model, prompt string, n int) ([]int, error) {
	e := benchengine.New(benchengine.Options{Model: model})
	var ends []int
	total := 0
	_, err := e.Generate(context.Background(), engine.Request{Prompt: prompt, MaxTokens: n}, func(t engine.Token) error {
		total += len(t.Text)
		ends = append(ends, total)
		return nil
	})
	return ends, err
}

// stream sends one streamed completion and reads it to the end. onEvent, if
// set, is called after each text event with the tokens received so far.
func (b *overheadBench) stream(ctx context.Context, model, prompt string, maxTokens int, onEvent func(n int)) (*streamTrace, error) {
	ends, err := tokenEnds(model, prompt, maxTokens)
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(map[string]any{"model": model, "prompt": prompt, "max_tokens": maxTokens,
		"stream": true, "temperature": 0, "redundancy": b.mode})
	req, err := http.NewRequestWithContext(ctx, "POST", b.api+"/v1/completions", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+b.key)
	req.Header.Set("Content-Type", "application/json")
	tr := &streamTrace{}
	t0 := time.Now()
	resp, err := b.client.Do(req)
	if err != nil {
		return tr, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return tr, fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
	}
	r := bufio.NewReader(resp.Body)
	last := t0
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return tr, err
		}
		now := time.Now()
		data, ok := bytes.CutPrefix(line, []byte("data: "))
		if !ok {
			continue
		}
		data = bytes.TrimSpace(data)
		if string(data) == "[DONE]" {
			tr.done = true
			return tr, nil
		}
		var ev struct {
			Choices []struct{ Text string } `json:"choices"`
			Error   *struct{ Message string }
		}
		if err := json.Unmarshal(data, &ev); err != nil {
			return tr, fmt.Errorf("bad event: %w", err)
		}
		if ev.Error != nil {
			return tr, fmt.Errorf("stream error: %s", ev.Error.Message)
		}
		if len(ev.Choices) == 0 || ev.Choices[0].Text == "" {
			continue
		}
		tr.text.WriteString(ev.Choices[0].Text)
		k := 0
		for tr.tokens+k < len(ends) && ends[tr.tokens+k] <= tr.text.Len() {
			k++
		}
		for j := 0; j < k; j++ {
			switch {
			case tr.tokens+j == 0:
				tr.ttft = now.Sub(t0)
			case j == 0:
				tr.gaps = append(tr.gaps, now.Sub(last))
			default:
				tr.gaps = append(tr.gaps, 0) // arrived together
			}
		}
		last = now
		tr.events++
		tr.tokens += k
		if onEvent != nil {
			onEvent(tr.tokens)
		}
	}
}

// direct runs the bench engine in this process: the floor.
func direct(n, tokens int) (ttfts, gaps []time.Duration, err error) {
	e := benchengine.New(benchengine.Options{Model: instantModel})
	for i := 0; i < n; i++ {
		req := engine.Request{Prompt: fmt.Sprintf("bench prompt %d", i), MaxTokens: tokens}
		t0 := time.Now()
		last := t0
		k := 0
		_, err := e.Generate(context.Background(), req, func(engine.Token) error {
			now := time.Now()
			if k == 0 {
				ttfts = append(ttfts, now.Sub(t0))
			} else {
				gaps = append(gaps, now.Sub(last))
			}
			last = now
			k++
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
	}
	return ttfts, gaps, nil
}

func (b *overheadBench) latency(ctx context.Context, n, conc int) error {
	// Warm up connections, host figures and the orchestrator's caches.
	for i := 0; i < 20; i++ {
		if _, err := b.stream(ctx, instantModel, fmt.Sprintf("warm up %d", i), b.tokens, nil); err != nil {
			return fmt.Errorf("warm-up request: %w", err)
		}
	}
	dTTFT, dGaps, err := direct(n, b.tokens)
	if err != nil {
		return err
	}
	cpu0, err := procCPU(b.pid)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var ttfts, gaps []time.Duration
	var firstErr error
	events := 0
	next := make(chan int)
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				tr, err := b.stream(ctx, instantModel, fmt.Sprintf("bench prompt %d", i), b.tokens, nil)
				mu.Lock()
				if err == nil && tr.tokens != b.tokens {
					err = fmt.Errorf("request %d: %d tokens, want %d", i, tr.tokens, b.tokens)
				}
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if err == nil {
					events += tr.events
					ttfts = append(ttfts, tr.ttft)
					gaps = append(gaps, tr.gaps...)
				}
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	wall := time.Since(t0)
	cpu1, err := procCPU(b.pid)
	if err != nil {
		return err
	}
	if firstErr != nil {
		return firstErr
	}
	health, err := b.roundTrips(ctx, "/healthz", false)
	if err != nil {
		return err
	}
	models, err := b.roundTrips(ctx, "/v1/models", true)
	if err != nil {
		return err
	}
	pd, pn := percentiles(dTTFT), percentiles(ttfts)
	gd, gn := percentiles(dGaps), percentiles(gaps)
	fmt.Fprintf(b.out, "\nlatency: %d requests, concurrency %d, %.0f requests/s, %.1f SSE text events per request\n",
		n, conc, float64(n)/wall.Seconds(), float64(events)/float64(n))
	fmt.Fprintf(b.out, "  time to first token  direct p50 %-9s p99 %-9s  via network p50 %-9s p99 %-9s  added p50 %s p99 %s\n",
		us(pd[0]), us(pd[1]), us(pn[0]), us(pn[1]), us(pn[0]-pd[0]), us(pn[1]-pd[1]))
	fmt.Fprintf(b.out, "  inter-token          direct p50 %-9s p99 %-9s  via network p50 %-9s p99 %-9s  added p99 %s\n",
		us(gd[0]), us(gd[1]), us(gn[0]), us(gn[1]), us(gn[1]-gd[1]))
	fmt.Fprintf(b.out, "  orchestrator CPU     %s per %d-token request (%s over %s of wall time)\n",
		us((cpu1-cpu0)/time.Duration(n)), b.tokens, (cpu1 - cpu0).Round(time.Millisecond), wall.Round(time.Millisecond))
	fmt.Fprintf(b.out, "  HTTP floor (same client): GET /healthz p50 %s p99 %s; GET /v1/models (API key checked) p50 %s p99 %s\n",
		us(health[0]), us(health[1]), us(models[0]), us(models[1]))
	return nil
}

// roundTrips times 300 GETs of path: what any HTTP request costs here.
func (b *overheadBench) roundTrips(ctx context.Context, path string, withKey bool) ([2]time.Duration, error) {
	var ds []time.Duration
	for i := 0; i < 300; i++ {
		req, err := http.NewRequestWithContext(ctx, "GET", b.api+path, nil)
		if err != nil {
			return [2]time.Duration{}, err
		}
		if withKey {
			req.Header.Set("Authorization", "Bearer "+b.key)
		}
		t0 := time.Now()
		resp, err := b.client.Do(req)
		if err != nil {
			return [2]time.Duration{}, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		ds = append(ds, time.Since(t0))
	}
	return percentiles(ds), nil
}

func (b *overheadBench) memory(ctx context.Context, n int) error {
	before, err := b.orchStats(ctx)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var started sync.WaitGroup
	started.Add(n)
	var wg sync.WaitGroup
	var failed sync.Map
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var once sync.Once
			first := func(int) { once.Do(started.Done) }
			_, err := b.stream(sctx, slowModel, fmt.Sprintf("slow stream %d", i), b.tokens, first)
			if err != nil && sctx.Err() == nil {
				failed.Store(i, err)
			}
			once.Do(started.Done)
		}()
	}
	allStarted := make(chan struct{})
	go func() { started.Wait(); close(allStarted) }()
	select {
	case <-allStarted:
	case <-time.After(2 * time.Minute):
		cancel()
		wg.Wait()
		return fmt.Errorf("%d streams did not all start within 2 minutes", n)
	}
	var ferr error
	failed.Range(func(_, v any) bool { ferr = v.(error); return false })
	if ferr != nil {
		cancel()
		wg.Wait()
		return fmt.Errorf("slow stream: %w", ferr)
	}
	during, err := b.orchStats(ctx)
	if err != nil {
		return err
	}
	t0 := time.Now()
	cancel() // a burst of cancellations: every consumer leaves at once
	wg.Wait()
	var after orchStats
	deadline := time.Now().Add(30 * time.Second)
	for {
		if after, err = b.orchStats(ctx); err != nil {
			return err
		}
		if after.goroutines <= before.goroutines || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Fprintf(b.out, "\nmemory: %d concurrent streams (main + backup tasks each), every one past its first token\n", n)
	fmt.Fprintf(b.out, "  per in-flight stream  RSS %.1f KB, heap in use %.1f KB (RSS %d → %d MB)\n",
		float64(during.rss-before.rss)/1024/float64(n), float64(during.heap-before.heap)/1024/float64(n), before.rss>>20, during.rss>>20)
	fmt.Fprintf(b.out, "  goroutines           %d before, %d with the streams, %d after cancelling them all (%s to settle)\n",
		before.goroutines, during.goroutines, after.goroutines, time.Since(t0).Round(time.Millisecond))
	return nil
}

func (b *overheadBench) failover(ctx context.Context, rounds int) error {
	const total, killAt = 200, 20
	const delay = 2 * time.Millisecond
	var gaps []time.Duration
	for r := 0; r < rounds; r++ {
		model := fmt.Sprintf("failover%d", r)
		type fh struct {
			c       *child
			metrics string
		}
		var hs []fh
		for i := 0; i < 2; i++ {
			addr, err := freeAddr()
			if err != nil {
				return err
			}
			c, err := b.host(ctx, model, 4, delay, addr)
			if err != nil {
				return err
			}
			hs = append(hs, fh{c, addr})
		}
		if err := b.waitServing(ctx, model, 2); err != nil {
			return err
		}
		var killed, last time.Time
		var gap time.Duration // the longest wait for a token after the kill
		var killErr error
		prompt := fmt.Sprintf("failover prompt %d", r)
		tr, err := b.stream(ctx, model, prompt, total, func(n int) {
			now := time.Now()
			switch {
			case n >= killAt && killed.IsZero() && killErr == nil:
				// The consumer reads the busy host that has streamed most.
				best, bestN := -1, -1.0
				for i, h := range hs {
					url := "http://" + h.metrics + "/metrics"
					busy, err1 := scrapeMetric(ctx, url, "peerllm_host_in_flight")
					made, err2 := scrapeMetric(ctx, url, "peerllm_host_tokens_total")
					if err1 == nil && err2 == nil && busy > 0 && made > bestN {
						best, bestN = i, made
					}
				}
				if best < 0 {
					killErr = errors.New("no streaming host found")
					return
				}
				killed = time.Now()
				killErr = hs[best].c.cmd.Process.Signal(syscall.SIGKILL)
				last = killed
			case !killed.IsZero():
				gap = max(gap, now.Sub(last))
				last = now
			}
		})
		for _, h := range hs {
			h.c.cmd.Process.Signal(syscall.SIGKILL)
			<-h.c.done
		}
		for range hs {
			<-b.demo.exited // expected deaths, not a failure of the run
		}
		switch {
		case err != nil:
			return fmt.Errorf("failover round %d: %w", r, err)
		case killErr != nil:
			return fmt.Errorf("failover round %d: kill: %w", r, killErr)
		case !tr.done || tr.tokens != total || gap == 0:
			return fmt.Errorf("failover round %d: %d of %d tokens, done %v", r, tr.tokens, total, tr.done)
		}
		want, err := directText(model, prompt, total)
		if err != nil {
			return err
		}
		if tr.text.String() != want {
			return fmt.Errorf("failover round %d: the consumer's text differs from an uninterrupted run", r)
		}
		gaps = append(gaps, gap)
	}
	slices.Sort(gaps)
	var sum time.Duration
	for _, g := range gaps {
		sum += g
	}
	fmt.Fprintf(b.out, "\nfailover: host process killed (SIGKILL) after %d of %d tokens at %s/token, mode %s, %d rounds, text identical to an uninterrupted run\n",
		killAt, total, delay, b.mode, rounds)
	fmt.Fprintf(b.out, "  longest wait for a token after the death (a token takes %s)   mean %s, min %s, max %s\n",
		delay, us(sum/time.Duration(len(gaps))), us(gaps[0]), us(gaps[len(gaps)-1]))
	return nil
}

// directText is the bench engine's uninterrupted greedy answer.
func directText(model, prompt string, n int) (string, error) {
	e := benchengine.New(benchengine.Options{Model: model})
	var sb strings.Builder
	_, err := e.Generate(context.Background(), engine.Request{Prompt: prompt, MaxTokens: n}, func(t engine.Token) error {
		sb.WriteString(t.Text)
		return nil
	})
	return sb.String(), err
}

type orchStats struct {
	rss, heap  int64
	goroutines int
}

// orchStats reads the orchestrator's RSS from /proc and its heap and
// goroutines from its /metrics.
func (b *overheadBench) orchStats(ctx context.Context) (orchStats, error) {
	var s orchStats
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", b.pid))
	if err != nil {
		return s, fmt.Errorf("orchestrator memory: %w", err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			s.rss = kb << 10
		}
	}
	heap, err := scrapeMetric(ctx, b.api+"/metrics", "go_memstats_heap_inuse_bytes")
	if err != nil {
		return s, err
	}
	g, err := scrapeMetric(ctx, b.api+"/metrics", "go_goroutines")
	if err != nil {
		return s, err
	}
	s.heap, s.goroutines = int64(heap), int(g)
	return s, nil
}

// scrapeMetric reads one unlabelled (or the sum of a labelled) metric from a
// Prometheus text endpoint.
func scrapeMetric(ctx context.Context, url, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sum, found := 0.0, false
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, err
		}
		sum, found = sum+v, true
	}
	if !found {
		return 0, fmt.Errorf("%s: no %s", url, name)
	}
	return sum, sc.Err()
}

// procCPU is a process's user + system CPU time from /proc/<pid>/stat.
func procCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("orchestrator CPU: %w", err)
	}
	// Fields after the parenthesised command: state is field 3; utime and
	// stime are fields 14 and 15, in clock ticks (USER_HZ, 100 on Linux).
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	if len(f) < 13 {
		return 0, errors.New("orchestrator CPU: short /proc stat")
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// percentiles returns p50 and p99 of ds (sorted in place).
func percentiles(ds []time.Duration) [2]time.Duration {
	if len(ds) == 0 {
		return [2]time.Duration{}
	}
	slices.Sort(ds)
	at := func(p float64) time.Duration { return ds[min(int(p*float64(len(ds))), len(ds)-1)] }
	return [2]time.Duration{at(0.50), at(0.99)}
}

func us(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Microsecond), 'f', 1, 64) + "µs"
}
