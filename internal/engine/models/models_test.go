package models_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/engine/models"
	"github.com/peerllm/peerllm/internal/testenv"
)

// fileServer stands in for Hugging Face's resolve endpoint: it serves one
// file at /tinyllamas/stories260K.gguf, honouring Range like a CDN does,
// unless told to misbehave.
type fileServer struct {
	data        []byte
	cutFirst    bool // cut the connection half-way through the first response
	ignoreRange bool // answer 200 with the whole file even to a Range request
	cutEvery    int  // if > 0, cut every response after this many body bytes

	mu     sync.Mutex
	ranges []string // Range header of each request ("" for none)
}

func (s *fileServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	first := len(s.ranges) == 1
	s.mu.Unlock()
	if r.URL.Path != "/tinyllamas/stories260K.gguf" {
		http.NotFound(w, r)
		return
	}
	if first && s.cutFirst {
		w.Header().Set("Content-Length", strconv.Itoa(len(s.data)))
		w.WriteHeader(http.StatusOK)
		w.Write(s.data[:len(s.data)/2])
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	if s.cutEvery > 0 {
		start := 0
		if rg := r.Header.Get("Range"); rg != "" {
			fmt.Sscanf(rg, "bytes=%d-", &start)
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(s.data)-1, len(s.data)))
			w.Header().Set("Content-Length", strconv.Itoa(len(s.data)-start))
			w.WriteHeader(http.StatusPartialContent)
		} else {
			w.Header().Set("Content-Length", strconv.Itoa(len(s.data)))
			w.WriteHeader(http.StatusOK)
		}
		w.Write(s.data[start:min(start+s.cutEvery, len(s.data))])
		w.(http.Flusher).Flush()
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close()
		}
		return
	}
	if s.ignoreRange {
		w.Header().Set("Content-Length", strconv.Itoa(len(s.data)))
		w.Write(s.data)
		return
	}
	http.ServeContent(w, r, "stories260K.gguf", time.Time{}, bytes.NewReader(s.data))
}

func (s *fileServer) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ranges...)
}

func realModel(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.ModelsDir(t), "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func start(t *testing.T, s *fileServer) models.Options {
	t.Helper()
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return models.Options{CacheDir: t.TempDir(), BaseURL: srv.URL + "/", HTTPClient: srv.Client()}
}

func checkInstalled(t *testing.T, p string, opts models.Options, want []byte) {
	t.Helper()
	if wantPath := filepath.Join(opts.CacheDir, "tinyllamas", "stories260K.gguf"); p != wantPath {
		t.Errorf("path = %s, want %s", p, wantPath)
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("downloaded file differs from the served file (%d vs %d bytes)", len(got), len(want))
	}
	if _, err := os.Stat(p + ".part"); !os.IsNotExist(err) {
		t.Errorf(".part file left behind: %v", err)
	}
}

func TestResolveLocal(t *testing.T) {
	dir := testenv.ModelsDir(t)
	gguf := filepath.Join(dir, "stories260K.gguf")
	for _, tc := range []struct {
		name, in, want string
		opts           models.Options
	}{
		{"explicit path", gguf, gguf, models.Options{}},
		{"dir by short name", "stories260K", gguf, models.Options{Dir: dir}},
		{"dir by file name", "stories260K.gguf", gguf, models.Options{Dir: dir}},
		{"dir by catalogue path", "tinyllamas/stories260K", gguf, models.Options{Dir: dir}},
		{"dir adds .bin", "tok512", filepath.Join(dir, "tok512.bin"), models.Options{Dir: dir}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.CacheDir = t.TempDir()
			tc.opts.BaseURL = "http://127.0.0.1:1/" // never reached
			got, err := models.Resolve(context.Background(), tc.in, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Resolve(%q) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

func TestDownloadFreshThenCache(t *testing.T) {
	data := realModel(t)
	s := &fileServer{data: data}
	opts := start(t, s)
	var bar bytes.Buffer
	opts.Progress = &bar
	p, err := models.Resolve(context.Background(), "stories260K", opts)
	if err != nil {
		t.Fatal(err)
	}
	checkInstalled(t, p, opts, data)
	if !strings.Contains(bar.String(), "100%") || !strings.Contains(bar.String(), "1.1 MiB") {
		t.Errorf("progress output lacks 100%% and size: %q", bar.String())
	}
	// The second call is a cache hit, by either name.
	for _, name := range []string{"stories260K", "tinyllamas/stories260K"} {
		p2, err := models.Resolve(context.Background(), name, opts)
		if err != nil || p2 != p {
			t.Fatalf("Resolve(%s) from cache = %s, %v; want %s", name, p2, err, p)
		}
	}
	if n := len(s.requests()); n != 1 {
		t.Errorf("server saw %d requests, want 1", n)
	}
}

func TestDownloadResumesAfterCut(t *testing.T) {
	data := realModel(t)
	s := &fileServer{data: data, cutFirst: true}
	opts := start(t, s)
	p, err := models.Resolve(context.Background(), "stories260K", opts)
	if err != nil {
		t.Fatal(err)
	}
	checkInstalled(t, p, opts, data)
	reqs := s.requests()
	if len(reqs) != 2 || reqs[0] != "" || reqs[1] != "bytes="+strconv.Itoa(len(data)/2)+"-" {
		t.Errorf("requests' Range headers = %q, want none then bytes=%d-", reqs, len(data)/2)
	}
}

func TestDownloadKeepsPartAcrossCalls(t *testing.T) {
	data := realModel(t)
	s := &fileServer{data: data, cutEvery: 100_000}
	opts := start(t, s)
	// One call makes five attempts of 100 kB each, then gives up keeping
	// the 500 kB it has; the next call resumes from there.
	_, err := models.Resolve(context.Background(), "stories260K", opts)
	part := filepath.Join(opts.CacheDir, "tinyllamas", "stories260K.gguf.part")
	if err == nil || !strings.Contains(err.Error(), "kept for resume") {
		t.Fatalf("err = %v, want a broken transfer with the partial file kept", err)
	}
	if st, err := os.Stat(part); err != nil || st.Size() != 500_000 {
		t.Fatalf("partial file: %v, %v; want 500000 bytes", st, err)
	}
	if reqs := s.requests(); len(reqs) != 5 || reqs[4] != "bytes=400000-" {
		t.Errorf("Range headers = %q", reqs)
	}
	for i := 0; i < 3; i++ {
		p, err := models.Resolve(context.Background(), "stories260K", opts)
		if err == nil {
			checkInstalled(t, p, opts, data)
			if got := s.requests()[5]; got != "bytes=500000-" {
				t.Errorf("second call started with Range %q, want bytes=500000-", got)
			}
			return
		}
	}
	t.Fatal("download never completed")
}

func TestDownloadResumesPartFile(t *testing.T) {
	data := realModel(t)
	s := &fileServer{data: data}
	opts := start(t, s)
	part := filepath.Join(opts.CacheDir, "tinyllamas", "stories260K.gguf.part")
	if err := os.MkdirAll(filepath.Dir(part), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(part, data[:1000], 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := models.Resolve(context.Background(), "stories260K", opts)
	if err != nil {
		t.Fatal(err)
	}
	checkInstalled(t, p, opts, data)
	if reqs := s.requests(); len(reqs) != 1 || reqs[0] != "bytes=1000-" {
		t.Errorf("Range headers = %q, want [bytes=1000-]", reqs)
	}
}

func TestDownloadRangeUnsupported(t *testing.T) {
	data := realModel(t)
	s := &fileServer{data: data, ignoreRange: true}
	opts := start(t, s)
	part := filepath.Join(opts.CacheDir, "tinyllamas", "stories260K.gguf.part")
	if err := os.MkdirAll(filepath.Dir(part), 0o755); err != nil {
		t.Fatal(err)
	}
	// A stale prefix that does not even match: the 200 answer must replace it.
	if err := os.WriteFile(part, bytes.Repeat([]byte{0xAA}, 5000), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := models.Resolve(context.Background(), "stories260K", opts)
	if err != nil {
		t.Fatal(err)
	}
	checkInstalled(t, p, opts, data)
	if reqs := s.requests(); len(reqs) != 1 || reqs[0] != "bytes=5000-" {
		t.Errorf("Range headers = %q, want [bytes=5000-]", reqs)
	}
}

func TestDownloadBadChecksum(t *testing.T) {
	data := append([]byte(nil), realModel(t)...)
	data[len(data)/3] ^= 0x01
	sum := sha256.Sum256(data)
	opts := start(t, &fileServer{data: data})
	_, err := models.Resolve(context.Background(), "stories260K", opts)
	if err == nil || !strings.Contains(err.Error(), "sha256 "+hex.EncodeToString(sum[:])) {
		t.Fatalf("err = %v, want a sha256 mismatch naming the received digest", err)
	}
	entries, _ := os.ReadDir(filepath.Join(opts.CacheDir, "tinyllamas"))
	if len(entries) != 0 {
		t.Errorf("cache holds %d files after a bad download, want none", len(entries))
	}
}

func TestResolveNotFound(t *testing.T) {
	s := &fileServer{data: realModel(t)}
	opts := start(t, s)
	t.Run("404", func(t *testing.T) {
		o := opts
		o.BaseURL += "missing/"
		_, err := models.Resolve(context.Background(), "stories260K", o)
		if !errors.Is(err, models.ErrNotFound) || !strings.Contains(err.Error(), "404") {
			t.Fatalf("err = %v, want ErrNotFound with HTTP 404", err)
		}
	})
	for _, name := range []string{"no-such-model", "dir/missing.gguf", "../escape", ""} {
		t.Run("unknown "+name, func(t *testing.T) {
			before := len(s.requests())
			_, err := models.Resolve(context.Background(), name, opts)
			if !errors.Is(err, models.ErrNotFound) {
				t.Fatalf("err = %v, want ErrNotFound", err)
			}
			if len(s.requests()) != before {
				t.Error("an unknown name reached the network")
			}
		})
	}
}

func TestDownloadCancelled(t *testing.T) {
	opts := start(t, &fileServer{data: realModel(t)})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := models.Resolve(ctx, "stories260K", opts)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestLookup(t *testing.T) {
	for _, name := range []string{"stories260K", "tinyllamas/stories260K", "tinyllamas/stories260K.gguf"} {
		e, ok := models.Lookup(name)
		if !ok || e.Size != 1185376 || e.Path != "tinyllamas/stories260K.gguf" {
			t.Errorf("Lookup(%q) = %+v, %v", name, e, ok)
		}
	}
	if _, ok := models.Lookup("stories"); ok {
		t.Error("Lookup(stories) found an entry")
	}
}

// BenchmarkDownload measures a fresh download of the tiny model over
// loopback, including the sha256 check and the rename into the cache.
func BenchmarkDownload(b *testing.B) {
	data, err := os.ReadFile(filepath.Join(testenv.ModelsDir(b), "stories260K.gguf"))
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(&fileServer{data: data})
	defer srv.Close()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		opts := models.Options{CacheDir: b.TempDir(), BaseURL: srv.URL + "/", HTTPClient: srv.Client()}
		if _, err := models.Resolve(context.Background(), "stories260K", opts); err != nil {
			b.Fatal(err)
		}
	}
}
