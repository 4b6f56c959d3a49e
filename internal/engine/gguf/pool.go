package gguf

import (
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"
)

// parallelMin is the number of weight elements below which MatVec runs on the
// calling goroutine: waking workers costs microseconds, more than a small
// matrix takes (stories260K's 64-wide layers are far below it). It is a
// variable only so a benchmark can measure the handoff; nothing changes it.
var parallelMin = 1 << 15

// Pool runs matrix-vector products on a fixed set of worker goroutines it
// owns. NewPool starts them; Close stops them and waits. Concurrent calls are
// safe, but the parallel ones on one Pool run one at a time, so give each
// concurrently running sequence its own Pool. A nil *Pool is valid and
// computes on the calling goroutine.
type Pool struct {
	threads int
	mu      sync.Mutex // held for a whole MatVec
	start   []chan struct{}
	done    sync.WaitGroup // one count per worker busy with the current job
	exited  sync.WaitGroup // one count per live worker
	job     job
	closed  bool
	round   bool         // round activations like ggml before the dot product
	scratch []float32    // rounded activations; grows, never shrinks
	act     qAct         // quantized activations; grow, never shrink
	next    atomic.Int64 // first row not yet claimed in the current job
}

// job is the MatVec in flight, written before workers are signalled.
type job struct {
	typ      Type
	kern     rowDot
	ikern    intKernel // set instead of kern: integer kernel over act
	act      qAct      // the n quantized input vectors
	bs       int       // activation block size of ikern
	w        []byte
	rowBytes int
	rows     int
	chunk    int // rows claimed at a time in a parallel job
	n        int // input vectors
	x, out   []float32
}

// NewPool starts a pool computing on threads goroutines in all: the caller of
// MatVec and threads-1 workers. threads < 1 means 1.
func NewPool(threads int) *Pool {
	threads = max(threads, 1)
	p := &Pool{threads: threads, start: make([]chan struct{}, threads-1)}
	for i := range p.start {
		p.start[i] = make(chan struct{})
		p.exited.Add(1)
		go p.worker(p.start[i])
	}
	return p
}

// SetRoundActivations makes MatVec and MatMul round the activations the way
// llama.cpp's CPU backend does before its dot products (see RoundActivations),
// so results track llama.cpp's more closely at a cost of one pass over x per
// call. It is off by default. Call it before the Pool is used.
func (p *Pool) SetRoundActivations(on bool) { p.round = on }

// Threads returns the number of goroutines a large MatVec uses.
func (p *Pool) Threads() int {
	if p == nil {
		return 1
	}
	return p.threads
}

func (p *Pool) worker(start <-chan struct{}) {
	defer p.exited.Done()
	for range start {
		p.claim()
		p.done.Done()
	}
}

// claim computes chunks of the current job's rows until none are left.
// Claiming small chunks rather than splitting the rows evenly up front keeps
// every thread busy when one of them is slowed by other work on the machine.
func (p *Pool) claim() {
	j := &p.job
	for {
		lo := int(p.next.Add(int64(j.chunk))) - j.chunk
		if lo >= j.rows {
			return
		}
		j.run(lo, min(lo+j.chunk, j.rows))
	}
}

// run computes rows lo to hi of the job.
func (j *job) run(lo, hi int) {
	cols := len(j.x) / j.n
	if useSIMD && j.n == 1 && j.runRows(lo, hi, cols) {
		return
	}
	if j.ikern != nil {
		nb := cols / j.bs
		for r := lo; r < hi; r++ {
			row := j.w[r*j.rowBytes : (r+1)*j.rowBytes]
			for i := range j.n {
				a := qAct{q: j.act.q[i*cols : (i+1)*cols], d: j.act.d[i*nb : (i+1)*nb]}
				if j.act.sums != nil {
					a.sums = j.act.sums[i*cols/16 : (i+1)*cols/16]
				}
				j.out[i*j.rows+r] = j.ikern(row, a)
			}
		}
		return
	}
	for r := lo; r < hi; r++ {
		row := j.w[r*j.rowBytes : (r+1)*j.rowBytes]
		for i := range j.n {
			j.out[i*j.rows+r] = j.kern(row, j.x[i*cols:(i+1)*cols])
		}
	}
}

// Close stops the workers and waits for them. It is idempotent; MatVec must
// not be called after Close.
func (p *Pool) Close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	for _, c := range p.start {
		close(c)
	}
	p.exited.Wait()
}

// MatVec computes out[r] = dot(row r of w, x) for a rows×cols matrix w stored
// row after row in format t (a GGUF tensor with Dims [cols, rows]). The
// weights stay encoded; the dot product works block by block with float32
// activations. len(x) must be cols, len(out) at least rows, and cols a
// multiple of t's block size. MatVec does not allocate. It panics if t is not
// supported or the slices are too short: the caller checks types when it loads
// a model.
func (p *Pool) MatVec(t Type, w []byte, rows, cols int, x []float32, out []float32) {
	p.MatMul(t, w, rows, cols, x, 1, out)
}

// MatMul is MatVec for n input vectors at once, x holding them one after the
// other (n×cols) and out receiving n×rows results: out[i*rows+r] = dot(row r
// of w, vector i). Each weight row is read from memory once for all n
// vectors, which makes prompt processing cheaper than n MatVec calls.
func (p *Pool) MatMul(t Type, w []byte, rows, cols int, x []float32, n int, out []float32) {
	kern := kernel(t)
	if kern == nil {
		panic(fmt.Sprintf("gguf: MatVec: unsupported type %s", t))
	}
	rb, err := RowBytes(t, cols)
	if err != nil {
		panic(fmt.Sprintf("gguf: MatVec %s: %d columns is not a multiple of the block size %d", t, cols, t.BlockSize()))
	}
	if rows < 0 || n < 1 || len(x) != n*cols || len(out) < n*rows || len(w) < rows*rb {
		panic(fmt.Sprintf("gguf: MatVec %s %dx%d by %d vectors: have %d weight bytes, %d inputs, %d outputs", t, rows, cols, n, len(w), len(x), len(out)))
	}
	j := job{typ: t, kern: kern, w: w, rowBytes: rb, rows: rows, n: n, x: x, out: out}
	rounding := p != nil && p.round && DotType(t) != TypeF32
	if !rounding && (p == nil || p.threads == 1 || rows*cols*n < parallelMin || rows < 2) {
		j.run(0, rows)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		panic("gguf: MatVec on a closed Pool")
	}
	if ik, bs := intKernelFor(t); rounding && ik != nil {
		j.ikern, j.act, j.bs = ik, p.quantize(x, bs), bs
		if p.threads == 1 || rows*cols*n < parallelMin || rows < 2 {
			j.run(0, rows)
			return
		}
	} else if rounding {
		if len(p.scratch) < len(x) {
			p.scratch = make([]float32, len(x))
		}
		j.x = p.scratch[:len(x)]
		if err := RoundActivations(t, x, j.x); err != nil {
			panic(err.Error())
		}
		if p.threads == 1 || rows*cols*n < parallelMin || rows < 2 {
			j.run(0, rows)
			return
		}
	}
	workers := min(p.threads, rows) - 1
	j.chunk = max(1, rows/(8*(workers+1)))
	p.job = j
	p.next.Store(0)
	p.done.Add(workers)
	for i := range workers {
		p.start[i] <- struct{}{}
	}
	p.claim()
	p.done.Wait()
	p.job = job{} // drop references to the caller's slices
}

// quantize returns x quantized for an integer kernel with activation blocks
// of bs values (32: Q8_0, 256: Q8_K), in p.act's memory.
func (p *Pool) quantize(x []float32, bs int) qAct {
	if len(p.act.q) < len(x) {
		p.act.q = make([]int8, len(x))
		p.act.d = make([]float32, len(x)/32)
		p.act.sums = make([]int16, len(x)/16)
	}
	a := qAct{q: p.act.q[:len(x)], d: p.act.d[:len(x)/bs]}
	if bs == qk {
		a.sums = p.act.sums[:len(x)/16]
		quantizeQ8K(x, a)
	} else {
		quantizeQ8_0(x, a)
	}
	return a
}

// runRows computes rows lo to hi of a one-vector job with a many-row AVX2
// kernel (same bits as the row kernels, without a call per row), and
// reports whether it had one for the job.
func (j *job) runRows(lo, hi, cols int) bool {
	if hi <= lo {
		return true
	}
	switch {
	case j.typ == TypeF32 && j.ikern == nil && cols%8 == 0 && cols > 0:
		w := j.w[lo*j.rowBytes:]
		if _, ok := asFloat32s(w); !ok {
			return false
		}
		dotF32RowsAVX2((*float32)(unsafe.Pointer(&w[0])), j.rowBytes, hi-lo, &j.x[0], cols, &j.out[lo])
		return true
	case j.typ == TypeQ4_K && j.ikern != nil && cols > 0:
		dotQ4KRowsAVX2(&j.w[lo*j.rowBytes], j.rowBytes, hi-lo, &j.act.q[0], &j.act.d[0], &j.act.sums[0], len(j.act.d), &j.out[lo])
		return true
	case j.typ == TypeQ6_K && j.ikern != nil && cols > 0:
		dotQ6KRowsAVX2(&j.w[lo*j.rowBytes], j.rowBytes, hi-lo, &j.act.q[0], &j.act.d[0], &j.act.sums[0], len(j.act.d), &j.out[lo])
		return true
	case j.typ == TypeQ8_0 && j.ikern != nil && cols > 0:
		dotQ8_0RowsAVX2(&j.w[lo*j.rowBytes], j.rowBytes, hi-lo, &j.act.q[0], &j.act.d[0], len(j.act.d), &j.out[lo])
		return true
	}
	return false
}
