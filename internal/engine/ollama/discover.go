package ollama

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/peerllm/peerllm/internal/engine"
)

// Discover lists the models an Ollama server has (/api/tags) with what
// /api/show says of each: architecture, trained context length,
// quantization, parameter and vocabulary counts. baseURL "" means
// DefaultBaseURL.
func Discover(ctx context.Context, baseURL string) ([]engine.Info, error) {
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	baseURL = strings.TrimSuffix(baseURL, "/")
	client := http.DefaultClient
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/api/tags", nil)
	if err != nil {
		return nil, fmt.Errorf("ollama discover: %w", err)
	}
	resp, err := client.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("ollama discover: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("ollama discover: list models: %w", httpError(resp))
	}
	var tags struct {
		Models []struct {
			Name    string  `json:"name"`
			Model   string  `json:"model"`
			Details details `json:"details"`
		} `json:"models"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tags); err != nil {
		return nil, fmt.Errorf("ollama discover: decode /api/tags: %w", err)
	}
	out := make([]engine.Info, 0, len(tags.Models))
	for _, m := range tags.Models {
		name := m.Name
		if name == "" {
			name = m.Model
		}
		info, err := show(ctx, client, baseURL, name)
		if err != nil {
			return nil, fmt.Errorf("ollama discover: %w", err)
		}
		out = append(out, info)
	}
	return out, nil
}

type details struct {
	Family            string `json:"family"`
	ParameterSize     string `json:"parameter_size"`
	QuantizationLevel string `json:"quantization_level"`
}

// show asks /api/show about one model.
func show(ctx context.Context, client *http.Client, baseURL, model string) (engine.Info, error) {
	info := engine.Info{Model: model}
	// "name" for Ollama before 0.5, "model" after.
	body, _ := json.Marshal(map[string]string{"model": model, "name": model})
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/api/show", bytes.NewReader(body))
	if err != nil {
		return info, fmt.Errorf("show model %s: %w", model, err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(hreq)
	if err != nil {
		return info, fmt.Errorf("show model %s: %w", model, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return info, fmt.Errorf("show model %s: %w", model, httpError(resp))
	}
	var sh struct {
		Details   details        `json:"details"`
		ModelInfo map[string]any `json:"model_info"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&sh); err != nil {
		return info, fmt.Errorf("show model %s: decode: %w", model, err)
	}
	arch, _ := sh.ModelInfo["general.architecture"].(string)
	if arch == "" {
		arch = sh.Details.Family
	}
	info.Architecture = arch
	info.Quantization = sh.Details.QuantizationLevel
	info.ContextLength = intField(sh.ModelInfo, arch+".context_length")
	info.VocabSize = intField(sh.ModelInfo, arch+".vocab_size")
	info.Parameters = int64(intField(sh.ModelInfo, "general.parameter_count"))
	if info.Parameters == 0 {
		info.Parameters = parseParameterSize(sh.Details.ParameterSize)
	}
	return info, nil
}

func intField(m map[string]any, key string) int {
	if f, ok := m[key].(float64); ok {
		return int(f)
	}
	return 0
}

// parseParameterSize reads Ollama's "3.2B", "135M", "7b" into a count.
func parseParameterSize(s string) int64 {
	s = strings.TrimSpace(strings.ToUpper(s))
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "B"):
		mult, s = 1e9, strings.TrimSuffix(s, "B")
	case strings.HasSuffix(s, "M"):
		mult, s = 1e6, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "K"):
		mult, s = 1e3, strings.TrimSuffix(s, "K")
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0
	}
	return int64(f * mult)
}
