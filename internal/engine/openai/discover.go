package openai

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/peerllm/peerllm/internal/engine"
)

// Discover lists the models the server serves (GET /v1/models). Where the
// server says more than a name it fills the rest: vLLM's max_model_len,
// llama-server's meta (n_ctx_train, n_params, n_vocab) narrowed to the
// context it actually runs with (/props default_generation_settings.n_ctx).
// ContextLength is 0 when the server does not say. cfg supplies BaseURL,
// APIKey and HTTPClient.
func Discover(ctx context.Context, cfg Config) ([]engine.Info, error) {
	e, err := New(cfg)
	if err != nil {
		return nil, err
	}
	var list struct {
		Data []struct {
			ID          string `json:"id"`
			MaxModelLen int    `json:"max_model_len"`
			// ContextLength is what LM Studio and PeerLLM's own /v1/models say.
			ContextLength int `json:"context_length"`
			Meta          *struct {
				NCtxTrain int   `json:"n_ctx_train"`
				NParams   int64 `json:"n_params"`
				NVocab    int   `json:"n_vocab"`
			} `json:"meta"`
		} `json:"data"`
	}
	if err := e.getJSON(ctx, e.base+"/models", &list); err != nil {
		return nil, fmt.Errorf("openai discover: %w", err)
	}
	// llama-server reports its running context in /props; others 404.
	var props struct {
		Settings struct {
			NCtx int `json:"n_ctx"`
		} `json:"default_generation_settings"`
	}
	root := e.base[:len(e.base)-len("/v1")]
	_ = e.getJSON(ctx, root+"/props", &props) // optional
	out := make([]engine.Info, 0, len(list.Data))
	for _, m := range list.Data {
		info := engine.Info{Model: m.ID, Architecture: "remote", ContextLength: m.MaxModelLen}
		if info.ContextLength == 0 {
			info.ContextLength = m.ContextLength
		}
		if m.Meta != nil {
			info.ContextLength = m.Meta.NCtxTrain
			info.Parameters = m.Meta.NParams
			info.VocabSize = m.Meta.NVocab
		}
		if n := props.Settings.NCtx; n > 0 && (info.ContextLength == 0 || n < info.ContextLength) {
			info.ContextLength = n
		}
		out = append(out, info)
	}
	return out, nil
}

// Connect returns an engine for cfg after checking that the server serves
// cfg.Model (any model when cfg.Model is ""; the first is used) and, when
// cfg.ContextLength is 0, taking the context length the server reports.
func Connect(ctx context.Context, cfg Config) (*Engine, error) {
	infos, err := Discover(ctx, cfg)
	if err != nil {
		return nil, err
	}
	for _, info := range infos {
		if cfg.Model != "" && info.Model != cfg.Model {
			continue
		}
		cfg.Model = info.Model
		if cfg.ContextLength == 0 {
			cfg.ContextLength = info.ContextLength
		}
		e, err := New(cfg)
		if err != nil {
			return nil, err
		}
		e.info = info
		e.info.ContextLength = e.cfg.ContextLength
		return e, nil
	}
	return nil, fmt.Errorf("openai engine: server does not serve model %q (it has %d models)", cfg.Model, len(infos))
}

func (e *Engine) getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if e.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+e.cfg.APIKey)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return httpError(resp)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("decode %s: %w", url, err)
	}
	return nil
}
