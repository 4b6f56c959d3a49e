package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/peerllm/peerllm/internal/safety"
)

// Moderator serves POST /v1/moderations: the orchestrator's own content
// screen, answered in OpenAI's format. Inputs are never forwarded to hosts.
type Moderator interface {
	// Moderate returns one result per input, in order, and the name of the
	// model that judged them. It must not log or keep the inputs.
	Moderate(ctx context.Context, inputs []string) ([]safety.ModerationResult, string, error)
}

// maxModerationInputs bounds the inputs of one /v1/moderations request.
const maxModerationInputs = 256

// handleModerations serves POST /v1/moderations. The body is OpenAI's:
// {"input": string | [string] | [{"type":"text","text":string}], "model": optional}.
func (s *Server) handleModerations(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	status := http.StatusOK
	defer func() { s.m.observe("moderations", status, time.Since(start)) }()
	fail := func(e *Error) {
		status = e.Status
		writeError(w, e)
	}
	body, e := readBody(w, r, s.cfg.MaxBodyBytes)
	if e != nil {
		fail(e)
		return
	}
	inputs, e := parseModeration(body)
	if e != nil {
		fail(e)
		return
	}
	results, model, err := s.cfg.Moderator.Moderate(r.Context(), inputs)
	if err != nil {
		e := errorFor(err, "")
		if e.Status >= 500 {
			s.log.Error("moderation failed", "request_id", requestID(r.Context()), "err", err)
		}
		fail(e)
		return
	}
	id := requestID(r.Context())
	writeJSON(w, http.StatusOK, struct {
		ID      string                    `json:"id"`
		Model   string                    `json:"model"`
		Results []safety.ModerationResult `json:"results"`
	}{ID: "modr-" + strings.TrimPrefix(id, "req"), Model: model, Results: results})
}

// parseModeration decodes the input of a /v1/moderations body.
func parseModeration(body []byte) ([]string, *Error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, badRequest("", "The request body is empty; send a JSON object.")
	}
	var req struct {
		Input json.RawMessage `json:"input"`
		Model *string         `json:"model"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return nil, badParam(te.Field, "Invalid type for '%s': expected %s.", te.Field, jsonKind(te.Type.String()))
		}
		return nil, badRequest("", "The request body is not a valid JSON object.")
	}
	if dec.More() {
		return nil, badRequest("", "The request body holds more than one JSON value.")
	}
	raw := bytes.TrimSpace(req.Input)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, badParam("input", "'input' is required.")
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, badParam("input", "'input' must be a string or an array of strings or text objects.")
	}
	if len(items) == 0 {
		return nil, badParam("input", "'input' must not be empty.")
	}
	if len(items) > maxModerationInputs {
		return nil, badParam("input", "'input' holds %d items; at most %d are accepted.", len(items), maxModerationInputs)
	}
	out := make([]string, len(items))
	for i, it := range items {
		if err := json.Unmarshal(it, &out[i]); err == nil {
			continue
		}
		var obj struct {
			Type string  `json:"type"`
			Text *string `json:"text"`
		}
		if err := json.Unmarshal(it, &obj); err != nil || obj.Type != "text" || obj.Text == nil {
			return nil, badParam("input", "'input[%d]' must be a string or a {\"type\":\"text\",\"text\":...} object; only text is screened here.", i)
		}
		out[i] = *obj.Text
	}
	return out, nil
}
