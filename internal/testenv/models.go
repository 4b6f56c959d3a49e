// Package testenv helps tests use real parts: it finds the shared model
// directory, builds the peerllm binary once and starts real processes on
// 127.0.0.1. Only tests import it; nothing in the binary does.
package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// ModelsDir returns the directory holding the tiny test models: $PEERLLM_MODELS
// if set, else ../shared/models beside the module root. It fails the test if
// neither exists, because CI always has ../shared beside the checkout.
func ModelsDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("PEERLLM_MODELS"); d != "" {
		return d
	}
	root, err := ModuleRoot()
	if err != nil {
		t.Fatalf("find module root: %v", err)
	}
	d := filepath.Join(root, "..", "shared", "models")
	if _, err := os.Stat(filepath.Join(d, "stories260K.gguf")); err != nil {
		t.Fatalf("tiny model not found: set PEERLLM_MODELS or put shared/ beside the checkout (%v)", err)
	}
	return d
}

// SharedDir returns ../shared beside the module root (evaldata, models).
func SharedDir(t testing.TB) string {
	t.Helper()
	return filepath.Dir(ModelsDir(t))
}

// ModuleRoot walks up from the working directory to the directory holding go.mod.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}
