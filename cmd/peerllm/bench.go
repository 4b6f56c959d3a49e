package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/peerllm/peerllm/internal/engine/gguf"
	"github.com/peerllm/peerllm/internal/engine/llama"
	"github.com/peerllm/peerllm/internal/engine/models"
)

// benchCommands are the `peerllm bench` subcommands. Others (orchestrator
// overhead, classifiers) are added here by their owners.
var benchCommands = map[string]struct {
	help string
	run  func(ctx context.Context, args []string, stdout io.Writer) error
}{
	"engine":    {"built-in engine speed: stories260K tokens/s, a generated ~110M model against memory bandwidth, load time", benchEngine},
	"bandwidth": {"memory read bandwidth with 1 to N threads", benchBandwidth},
	"overhead":  {"what the network adds to an instant engine: TTFT, inter-token, orchestrator CPU and memory per stream, failover gap", benchOverhead},
}

// runBench is `peerllm bench KIND ...`.
func runBench(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(os.Stderr, "usage: peerllm bench KIND [flags]")
		for _, k := range benchKinds() {
			fmt.Fprintf(os.Stderr, "  %-10s %s\n", k, benchCommands[k].help)
		}
		if len(args) == 0 {
			return usagef("which benchmark? (%s)", strings.Join(benchKinds(), ", "))
		}
		return nil
	}
	c, ok := benchCommands[args[0]]
	if !ok {
		return usagef("unknown benchmark %q (have %s)", args[0], strings.Join(benchKinds(), ", "))
	}
	return c.run(ctx, args[1:], os.Stdout)
}

func benchKinds() []string {
	var ks []string
	for k := range benchCommands {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// bandwidthBuffer returns a written buffer of mb MiB for ReadBandwidth.
func bandwidthBuffer(mb int) []byte {
	buf := make([]byte, mb<<20)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = byte(i >> 12)
	}
	return buf
}

func benchBandwidth(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("bench bandwidth")
	threads := fs.Int("threads", runtime.NumCPU(), "largest number of reading threads")
	sizeMB := fs.Int("size-mb", 512, "buffer size in MiB (much larger than the caches)")
	passes := fs.Int("passes", 5, "passes per thread count; the best is reported")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *threads < 1 || *sizeMB < 1 || *passes < 1 {
		return usagef("--threads, --size-mb and --passes must be positive")
	}
	buf := bandwidthBuffer(*sizeMB)
	fmt.Fprintf(stdout, "memory read bandwidth (%d MiB, best of %d passes, %s loads):\n", *sizeMB, *passes, gguf.SIMD())
	for n := 1; n <= *threads; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "  %d thread(s): %.2f GB/s\n", n, gguf.ReadBandwidth(buf, n, *passes)/1e9)
	}
	return nil
}

// engineRun is one timed decode.
type engineRun struct {
	wall, cpu time.Duration
}

func benchEngine(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("bench engine")
	model := fs.String("model", "", "benchmark only this model (file or name); default: stories260K and the generated models")
	modelsDir := fs.String("models-dir", os.Getenv("PEERLLM_MODELS"), "directory searched for model names (default $PEERLLM_MODELS)")
	threads := fs.Int("threads", 0, "threads (default: 1 for --model and stories260K, all cores for the generated models)")
	positions := fs.Int("positions", 512, "positions decoded per run (stories260K / --model)")
	runs := fs.Int("runs", 3, "runs per model; best and median are reported")
	large := fs.Bool("large", true, "also generate a ~110M-parameter Llama (F32 and Q8_0) and measure it against memory bandwidth")
	largePos := fs.Int("large-positions", 64, "positions decoded per run of the generated models")
	dir := fs.String("dir", "", "directory for the generated model files (default: a temporary one, removed after)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *positions < 1 || *runs < 1 || *largePos < 1 || *threads < 0 {
		return usagef("--positions, --runs and --large-positions must be positive, --threads not negative")
	}
	fmt.Fprintf(stdout, "kernels: %s; %s/%s, %d CPUs, GOMAXPROCS %d\n", gguf.SIMD(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0))

	name := *model
	if name == "" {
		name = "stories260K.bin"
		if *modelsDir == "" {
			name = "stories260K"
		}
	}
	small := max(*threads, 1)
	if err := benchModel(ctx, stdout, name, *modelsDir, small, *positions, *runs); err != nil {
		return err
	}
	if *model != "" || !*large {
		return nil
	}

	nt := *threads
	if nt == 0 {
		nt = runtime.NumCPU()
	}
	d := *dir
	if d == "" {
		tmp, err := os.MkdirTemp("", "peerllm-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		d = tmp
	}
	// Bandwidth is measured before and after the decodes and the best is
	// kept: on a shared machine a single measurement may catch a busy moment.
	// One thread and all threads are both reported: on a busy machine the
	// second core is often taken, which the one-thread share does not see.
	counts := []int{1}
	if nt > 1 {
		counts = append(counts, nt)
	}
	buf := bandwidthBuffer(512)
	bw := map[int]float64{}
	measure := func() {
		for _, n := range counts {
			bw[n] = max(bw[n], gguf.ReadBandwidth(buf, n, 3))
		}
	}
	measure()
	s := llama.Shape110M
	type gen struct {
		typ  gguf.Type
		path string
	}
	var gens []gen
	for _, typ := range []gguf.Type{gguf.TypeF32, gguf.TypeQ8_0} {
		p := filepath.Join(d, fmt.Sprintf("random-110M-%s.gguf", typ))
		t0 := time.Now()
		if err := llama.WriteRandomModel(p, s, typ); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "generated %s (%.1fM parameters, dim %d, %d layers, FFN %d, vocab %d) in %s\n",
			filepath.Base(p), float64(s.Parameters())/1e6, s.Dim, s.Layers, s.Hidden, s.Vocab, time.Since(t0).Round(time.Millisecond))
		gens = append(gens, gen{typ, p})
	}
	type result struct {
		typ     gguf.Type
		threads int
		tps     float64
		perTok  int64
	}
	var results []result
	for _, g := range gens {
		for _, n := range counts {
			r := result{typ: g.typ, threads: n}
			var err error
			if r.tps, err = benchDecodeRuns(ctx, stdout, g.path, n, *largePos, *runs, &r.perTok); err != nil {
				return err
			}
			results = append(results, r)
		}
		measure()
	}
	for _, n := range counts {
		fmt.Fprintf(stdout, "memory read bandwidth with %d thread(s) (best of before and after each model): %.2f GB/s\n", n, bw[n]/1e9)
	}
	for _, r := range results {
		rate := r.tps * float64(r.perTok)
		fmt.Fprintf(stdout, "  %-5s %d thread(s): %.1f tok/s × %.1f MB/token = %.2f GB/s = %.0f%% of the %d-thread bandwidth bound\n",
			r.typ, r.threads, r.tps, float64(r.perTok)/1e6, rate/1e9, 100*rate/bw[r.threads], r.threads)
	}
	return nil
}

// benchModel loads name and reports load time and decode speed.
func benchModel(ctx context.Context, stdout io.Writer, name, modelsDir string, threads, positions, runs int) error {
	path, err := models.Resolve(ctx, name, models.Options{Dir: modelsDir, Progress: os.Stderr})
	if err != nil {
		return err
	}
	_, err = benchDecodeRuns(ctx, stdout, path, threads, positions, runs, nil)
	return err
}

// benchDecodeRuns loads path (timing the load), decodes positions
// positions runs times and prints the figures; it returns the best wall
// tokens/s and sets *perTok to the weight bytes read per token.
func benchDecodeRuns(ctx context.Context, stdout io.Writer, path string, threads, positions, runs int, perTok *int64) (float64, error) {
	t0 := time.Now()
	e, err := llama.Load(path, llama.Options{Threads: threads})
	if err != nil {
		return 0, err
	}
	load := time.Since(t0)
	defer e.Close()
	info := e.Info()
	if positions > info.ContextLength {
		return 0, fmt.Errorf("%d positions, but %s's context is %d", positions, info.Model, info.ContextLength)
	}
	if _, err := e.BenchDecode(ctx, min(positions, 8)); err != nil { // warm the page cache
		return 0, err
	}
	var rs []engineRun
	for range runs {
		c0 := cpuTime()
		wall, err := e.BenchDecode(ctx, positions)
		if err != nil {
			return 0, err
		}
		rs = append(rs, engineRun{wall: wall, cpu: cpuTime() - c0})
	}
	tps := func(d time.Duration) float64 { return float64(positions) / d.Seconds() }
	slices.SortFunc(rs, func(a, b engineRun) int { return int(a.wall - b.wall) })
	best, med := rs[0], rs[len(rs)/2]
	bytes := e.WeightBytesPerToken()
	if perTok != nil {
		*perTok = bytes
	}
	fmt.Fprintf(stdout, "%s (%s, %.2fM parameters, %.1f MB of weights per token): load %s\n",
		info.Model, info.Quantization, float64(info.Parameters)/1e6, float64(bytes)/1e6, load.Round(10*time.Microsecond))
	line := fmt.Sprintf("  %d thread(s), greedy, %d positions: %.0f tok/s best, %.0f median (wall, %d runs)",
		threads, positions, tps(best.wall), tps(med.wall), runs)
	if best.cpu > 0 {
		var cpu time.Duration
		for _, r := range rs {
			cpu += r.cpu
		}
		line += fmt.Sprintf("; %.0f tok/s per CPU second", float64(positions*runs)/cpu.Seconds())
	}
	fmt.Fprintln(stdout, line)
	return tps(best.wall), nil
}
