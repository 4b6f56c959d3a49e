// Package models turns a model name or path into a local file: an explicit
// path, a models directory, the local cache, and last a download from the
// model's public home with progress, resume and a sha256 check. The host side
// (cmd, agent, engines) imports it; it imports nothing from PeerLLM.
package models

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// DefaultBaseURL is where catalogue models are downloaded from.
const DefaultBaseURL = "https://huggingface.co/ggml-org/models/resolve/main/"

// ErrNotFound means no file for the name exists locally and the name is not
// in the download catalogue (or the server has no such file).
var ErrNotFound = errors.New("model not found")

// Entry is a model the package can download: its path under the base URL,
// and the size and sha256 the download must have.
type Entry struct {
	Name   string // short name, e.g. "stories260K"
	Path   string // path under BaseURL and under the cache, e.g. "tinyllamas/stories260K.gguf"
	Size   int64  // bytes
	SHA256 string // lowercase hex
}

var catalogue = []Entry{{
	Name:   "stories260K",
	Path:   "tinyllamas/stories260K.gguf",
	Size:   1185376,
	SHA256: "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d",
}}

// Catalogue returns the models Resolve can download.
func Catalogue() []Entry { return append([]Entry(nil), catalogue...) }

// Lookup finds a catalogue entry by short name ("stories260K") or by its
// path with or without extension ("tinyllamas/stories260K").
func Lookup(name string) (Entry, bool) {
	for _, e := range catalogue {
		if name == e.Name || name == e.Path || name == strings.TrimSuffix(e.Path, path.Ext(e.Path)) {
			return e, true
		}
	}
	return Entry{}, false
}

// Options configure Resolve. The zero value is usable.
type Options struct {
	// Dir is a models directory searched by name (the caller passes
	// --models-dir or PEERLLM_MODELS); "" skips it.
	Dir string
	// CacheDir holds downloaded models; "" means os.UserCacheDir()/peerllm/models.
	CacheDir string
	// BaseURL is the download root; "" means DefaultBaseURL.
	BaseURL string
	// Progress receives a progress bar while downloading; nil means silent.
	Progress io.Writer
	// HTTPClient makes the download; nil means a client with a 30 s
	// response-header timeout and no overall timeout (ctx bounds it).
	HTTPClient *http.Client
}

// Resolve returns the path of the model file for nameOrPath, trying in order:
// an existing file at nameOrPath; Dir/name, Dir/name.gguf, Dir/name.bin; the
// same names (and the catalogue path) in the cache; a download of a catalogue
// model into the cache. A name found nowhere wraps ErrNotFound. A download
// that fails part-way leaves a .part file the next call resumes from.
func Resolve(ctx context.Context, nameOrPath string, opts Options) (string, error) {
	if nameOrPath == "" {
		return "", fmt.Errorf("resolve model: empty name: %w", ErrNotFound)
	}
	if isFile(nameOrPath) {
		return nameOrPath, nil
	}
	entry, known := Lookup(nameOrPath)
	names := candidates(nameOrPath, entry, known)
	if opts.Dir != "" {
		for _, n := range names {
			if p := filepath.Join(opts.Dir, n); isFile(p) {
				return p, nil
			}
		}
	}
	cache, err := cacheDir(opts.CacheDir)
	if err != nil {
		return "", fmt.Errorf("resolve model %s: %w", nameOrPath, err)
	}
	if known {
		p := filepath.Join(cache, filepath.FromSlash(entry.Path))
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Size() == entry.Size {
			return p, nil
		}
	} else {
		for _, n := range names {
			if p := filepath.Join(cache, n); isFile(p) {
				return p, nil
			}
		}
		where := "the cache " + cache
		if opts.Dir != "" {
			where = opts.Dir + " or " + where
		}
		return "", fmt.Errorf("resolve model %q: no such file, not in %s, and not a downloadable model (known: %s): %w",
			nameOrPath, where, knownNames(), ErrNotFound)
	}
	p, err := download(ctx, entry, cache, opts)
	if err != nil {
		return "", fmt.Errorf("resolve model %s: %w", nameOrPath, err)
	}
	return p, nil
}

// candidates lists the file names a name may have inside a directory. Names
// that would escape the directory are left out.
func candidates(name string, e Entry, known bool) []string {
	var out []string
	add := func(n string) {
		n = filepath.FromSlash(n)
		if !filepath.IsLocal(n) {
			return
		}
		for _, o := range out {
			if o == n {
				return
			}
		}
		out = append(out, n)
	}
	for _, n := range []string{name, name + ".gguf", name + ".bin"} {
		add(n)
	}
	if known {
		add(e.Path)
		add(path.Base(e.Path))
	}
	return out
}

func knownNames() string {
	var n []string
	for _, e := range catalogue {
		n = append(n, e.Name)
	}
	return strings.Join(n, ", ")
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

func cacheDir(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find cache directory: %w", err)
	}
	return filepath.Join(base, "peerllm", "models"), nil
}

func defaultClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = 30 * time.Second
	return &http.Client{Transport: tr}
}

// fileMode is the permission of downloaded files.
const fileMode fs.FileMode = 0o644
