package models

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// maxAttempts bounds how many times one Resolve call reconnects after a
// transfer that broke off; every retry must have made progress.
const maxAttempts = 5

// download fetches e into cache/e.Path through cache/e.Path.part, resuming
// the .part file with an HTTP Range request, and renames it into place once
// its size and sha256 match.
func download(ctx context.Context, e Entry, cache string, opts Options) (string, error) {
	final := filepath.Join(cache, filepath.FromSlash(e.Path))
	part := final + ".part"
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return "", fmt.Errorf("create cache directory: %w", err)
	}
	base := opts.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	url := strings.TrimSuffix(base, "/") + "/" + e.Path
	client := opts.HTTPClient
	if client == nil {
		client = defaultClient()
	}
	bar := newProgress(opts.Progress, path.Base(e.Path), e.Size)
	defer bar.finish()

	for attempt := 1; ; attempt++ {
		before := partSize(part)
		err := fetch(ctx, client, url, part, e.Size, bar)
		if err == nil {
			break
		}
		if ctx.Err() != nil || errors.Is(err, ErrNotFound) || errors.Is(err, errHTTP) {
			return "", err
		}
		if attempt >= maxAttempts || partSize(part) <= before {
			return "", fmt.Errorf("%w (partial download kept for resume: %s)", err, part)
		}
	}
	if err := verify(part, e); err != nil {
		os.Remove(part)
		return "", err
	}
	if err := os.Rename(part, final); err != nil {
		return "", fmt.Errorf("install download: %w", err)
	}
	return final, nil
}

var errHTTP = errors.New("download refused")

func partSize(p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return st.Size()
}

// fetch makes one request and appends what it receives to part. It returns
// nil once part holds size bytes.
func fetch(ctx context.Context, client *http.Client, url, part string, size int64, bar *progress) error {
	have := partSize(part)
	if have > size {
		have = 0 // not a prefix of this file: start again
	}
	if have == size && size > 0 {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("download %s: %w", url, err)
	}
	if have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("download %s: %w", url, err)
	}
	defer resp.Body.Close()

	flags := os.O_WRONLY | os.O_CREATE
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
		start, ok := contentRangeStart(resp.Header.Get("Content-Range"))
		if !ok || start != have {
			return fmt.Errorf("download %s: server resumed at %q, asked for byte %d: %w",
				url, resp.Header.Get("Content-Range"), have, errHTTP)
		}
		flags |= os.O_APPEND
	case resp.StatusCode == http.StatusOK:
		// A server that ignores Range sends the whole file: start over.
		have = 0
		flags |= os.O_TRUNC
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		// The .part file is not a prefix the server can continue: discard
		// it and start again.
		if have == 0 {
			return fmt.Errorf("download %s: HTTP %s: %w", url, resp.Status, errHTTP)
		}
		resp.Body.Close()
		if err := os.Remove(part); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("discard partial download: %w", err)
		}
		return fetch(ctx, client, url, part, size, bar)
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("download %s: HTTP %s: %w", url, resp.Status, ErrNotFound)
	default:
		return fmt.Errorf("download %s: HTTP %s: %w", url, resp.Status, errHTTP)
	}
	f, err := os.OpenFile(part, flags, fileMode)
	if err != nil {
		return fmt.Errorf("open partial download: %w", err)
	}
	bar.set(have)
	n, copyErr := io.Copy(f, io.LimitReader(&progressReader{r: resp.Body, bar: bar}, size-have))
	syncErr := f.Sync()
	closeErr := f.Close()
	if copyErr != nil {
		return fmt.Errorf("download %s: after %d bytes: %w", url, have+n, copyErr)
	}
	if err := errors.Join(syncErr, closeErr); err != nil {
		return fmt.Errorf("write partial download: %w", err)
	}
	if have+n < size {
		return fmt.Errorf("download %s: transfer ended at %d of %d bytes", url, have+n, size)
	}
	return nil
}

// contentRangeStart parses the first byte of "bytes START-END/TOTAL".
func contentRangeStart(h string) (int64, bool) {
	rest, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return 0, false
	}
	start, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(start, 10, 64)
	return n, err == nil
}

func verify(p string, e Entry) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("verify download: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("verify download: %w", err)
	}
	if n != e.Size {
		return fmt.Errorf("verify download %s: %d bytes, want %d; deleted it", e.Path, n, e.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != e.SHA256 {
		return fmt.Errorf("verify download %s: sha256 %s, want %s; deleted it", e.Path, got, e.SHA256)
	}
	return nil
}

// progress draws "name  done / total  pct%  rate" on one terminal line,
// redrawn at most every 200 ms.
type progress struct {
	w           io.Writer
	name        string
	total, done int64
	start, last time.Time
	startBytes  int64
	drawn       bool
}

func newProgress(w io.Writer, name string, total int64) *progress {
	now := time.Now()
	return &progress{w: w, name: name, total: total, start: now, startBytes: -1}
}

func (p *progress) set(done int64) {
	p.done = done
	if p.startBytes < 0 {
		p.startBytes = done
	}
	p.draw(false)
}

func (p *progress) add(n int) {
	p.done += int64(n)
	p.draw(false)
}

func (p *progress) draw(force bool) {
	if p.w == nil {
		return
	}
	now := time.Now()
	if !force && p.drawn && now.Sub(p.last) < 200*time.Millisecond {
		return
	}
	p.last, p.drawn = now, true
	pct := 0.0
	if p.total > 0 {
		pct = 100 * float64(p.done) / float64(p.total)
	}
	rate := 0.0
	if el := now.Sub(p.start).Seconds(); el > 0 && p.startBytes >= 0 {
		rate = float64(p.done-p.startBytes) / el
	}
	fmt.Fprintf(p.w, "\r%s  %s / %s  %3.0f%%  %s/s  ", p.name, humanBytes(float64(p.done)), humanBytes(float64(p.total)), pct, humanBytes(rate))
}

func (p *progress) finish() {
	if p.w == nil || !p.drawn {
		return
	}
	p.draw(true)
	fmt.Fprintln(p.w)
}

func humanBytes(b float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for b >= 1024 && i < len(units)-1 {
		b /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f %s", b, units[i])
	}
	return fmt.Sprintf("%.1f %s", b, units[i])
}

type progressReader struct {
	r   io.Reader
	bar *progress
}

func (r *progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.bar.add(n)
	return n, err
}
