package llama_test

import (
	"testing"

	"github.com/peerllm/peerllm/internal/engine"
	"github.com/peerllm/peerllm/internal/engine/enginetest"
	"github.com/peerllm/peerllm/internal/engine/llama"
)

// TestConformance runs the shared engine suite on stories260K, with one
// slot and with several.
func TestConformance(t *testing.T) {
	for name, slots := range map[string]int{"one slot": 1, "three slots": 3} {
		t.Run(name, func(t *testing.T) {
			enginetest.Run(t, func(t *testing.T) engine.Engine {
				return load(t, modelFiles(t)["gguf"], llama.Options{Threads: 1, Slots: slots, ContextLength: 512})
			}, enginetest.Options{Greedy: true, Seeded: true, Messages: true})
		})
	}
}
