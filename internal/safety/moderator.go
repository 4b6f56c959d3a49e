package safety

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Moderator is an optional AI moderation stage. Moderate returns a verdict
// for text (Source SourceAI) or an error; it must honour ctx cancellation and
// must not log or keep the text. Implementations here are safe for
// concurrent use.
type Moderator interface {
	Moderate(ctx context.Context, text string) (Verdict, error)
}

// Checker runs the built-in classifier and, only when its verdict is unsure
// and an AI stage is configured, the AI stage.
type Checker struct {
	Classifier *Classifier
	// AI is the optional second stage; nil means built-in only.
	AI Moderator
	// Observe, if set, is called after each stage with its name
	// (SourceBuiltin or SourceAI), its latency, whether it flagged and its
	// error, so each stage's latency and verdicts are measured separately.
	// It must be fast and must not block.
	Observe func(stage string, d time.Duration, flagged bool, err error)
}

// Check screens text. With no AI stage, or a sure built-in verdict, it
// returns the built-in verdict. Otherwise it returns the AI verdict (with the
// built-in scores kept for categories the AI did not score). If the AI stage
// fails, Check returns the built-in verdict together with the error: the
// verdict is valid and the caller decides whether to trust it or refuse.
func (ch *Checker) Check(ctx context.Context, text string) (Verdict, error) {
	t0 := time.Now()
	v := ch.Classifier.Classify(text)
	if ch.Observe != nil {
		ch.Observe(SourceBuiltin, time.Since(t0), v.Flagged, nil)
	}
	if ch.AI == nil || !v.Unsure {
		return v, nil
	}
	t1 := time.Now()
	av, err := ch.AI.Moderate(ctx, text)
	if ch.Observe != nil {
		ch.Observe(SourceAI, time.Since(t1), err == nil && av.Flagged, err)
	}
	if err != nil {
		return v, fmt.Errorf("ai moderation: %w", err)
	}
	for k, s := range v.Scores {
		if _, ok := av.Scores[k]; !ok {
			av.Scores[k] = s
		}
	}
	av.Unsure = true
	return av, nil
}

// newAIVerdict returns an all-false verdict with every category present.
func newAIVerdict() Verdict {
	v := Verdict{Categories: map[string]bool{}, Scores: map[string]float64{}, Source: SourceAI}
	for _, c := range Categories() {
		v.Categories[c] = false
	}
	return v
}

func (v *Verdict) trip(cat string, score float64) {
	if !v.Categories[cat] {
		v.Categories[cat] = true
		v.Tripped = append(v.Tripped, cat)
	}
	v.Flagged = true
	if score > v.Scores[cat] {
		v.Scores[cat] = score
	}
}

// sortTripped puts Tripped in Categories order.
func (v *Verdict) sortTripped() {
	v.Tripped = v.Tripped[:0]
	for _, c := range Categories() {
		if v.Categories[c] {
			v.Tripped = append(v.Tripped, c)
		}
	}
}

// OpenAIModerator calls an endpoint speaking OpenAI's moderation format
// (POST {BaseURL}/moderations).
type OpenAIModerator struct {
	BaseURL string       // e.g. https://api.openai.com/v1
	APIKey  string       // sent as a bearer token if set
	Model   string       // e.g. omni-moderation-latest; omitted if empty
	Client  *http.Client // default: a client with a 10 s timeout
}

// openAICategories maps OpenAI's moderation categories to ours.
var openAICategories = map[string]string{
	"sexual": Sexual, "sexual/minors": SexualMinors, "hate": Hate, "hate/threatening": HateThreatening,
	"harassment": Harassment, "harassment/threatening": Harassment, "self-harm": SelfHarm,
	"self-harm/intent": SelfHarmIntent, "self-harm/instructions": SelfHarmInstructions,
	"violence": Violence, "violence/graphic": ViolenceGraphic, "illicit": Illegal, "illicit/violent": IllegalWeapons,
}

// Moderate implements Moderator.
func (m *OpenAIModerator) Moderate(ctx context.Context, text string) (Verdict, error) {
	req := map[string]any{"input": text}
	if m.Model != "" {
		req["model"] = m.Model
	}
	var resp struct {
		Results []struct {
			Flagged        bool               `json:"flagged"`
			Categories     map[string]bool    `json:"categories"`
			CategoryScores map[string]float64 `json:"category_scores"`
		} `json:"results"`
	}
	if err := postJSON(ctx, m.Client, strings.TrimRight(m.BaseURL, "/")+"/moderations", m.APIKey, req, &resp); err != nil {
		return Verdict{}, err
	}
	if len(resp.Results) == 0 {
		return Verdict{}, errors.New("moderation response has no results")
	}
	r := resp.Results[0]
	v := newAIVerdict()
	for name, s := range r.CategoryScores {
		if c, ok := openAICategories[name]; ok && s > v.Scores[c] {
			v.Scores[c] = s
		}
	}
	for name, on := range r.Categories {
		if c, ok := openAICategories[name]; ok && on {
			v.trip(c, v.Scores[c])
		}
	}
	if r.Flagged && !v.Flagged {
		// Flagged for a category we do not map: keep the decision.
		v.trip(Illegal, 1)
	}
	if v.Categories[IllegalWeapons] && !v.Categories[Illegal] {
		v.trip(Illegal, v.Scores[IllegalWeapons])
	}
	v.sortTripped()
	return v, nil
}

// LlamaGuardModerator asks a Llama-Guard-style model served behind an
// OpenAI-compatible chat endpoint (POST {BaseURL}/chat/completions; vLLM,
// llama.cpp server and Ollama apply the model's own prompt template). The
// model answers "safe" or "unsafe" and a line of hazard codes (S1..S14).
// Only an operator-trusted backend may be configured: the raw prompt goes
// there.
type LlamaGuardModerator struct {
	BaseURL string       // e.g. http://127.0.0.1:8000/v1
	APIKey  string       // sent as a bearer token if set
	Model   string       // e.g. meta-llama/Llama-Guard-3-8B
	Client  *http.Client // default: a client with a 10 s timeout
}

// llamaGuardCodes maps the Llama Guard 3 hazard taxonomy to our categories.
var llamaGuardCodes = map[string][]string{
	"S1": {Violence, Illegal}, "S2": {Illegal}, "S3": {Sexual, Illegal}, "S4": {SexualMinors, Sexual},
	"S5": {Harassment}, "S6": {Illegal}, "S7": {Illegal, IllegalFraud}, "S8": {Illegal},
	"S9": {Illegal, IllegalWeapons}, "S10": {Hate}, "S11": {SelfHarm}, "S12": {Sexual},
	"S13": {Illegal, IllegalFraud}, "S14": {Illegal, IllegalMalware},
}

// Moderate implements Moderator.
func (m *LlamaGuardModerator) Moderate(ctx context.Context, text string) (Verdict, error) {
	req := map[string]any{
		"model":       m.Model,
		"messages":    []map[string]string{{"role": "user", "content": text}},
		"temperature": 0,
		"max_tokens":  20,
	}
	var resp struct {
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	if err := postJSON(ctx, m.Client, strings.TrimRight(m.BaseURL, "/")+"/chat/completions", m.APIKey, req, &resp); err != nil {
		return Verdict{}, err
	}
	if len(resp.Choices) == 0 {
		return Verdict{}, errors.New("guard response has no choices")
	}
	return parseLlamaGuard(resp.Choices[0].Message.Content)
}

// parseLlamaGuard reads "safe" or "unsafe\nS1,S10".
func parseLlamaGuard(out string) (Verdict, error) {
	v := newAIVerdict()
	fields := strings.Fields(strings.NewReplacer(",", " ").Replace(strings.ToLower(out)))
	if len(fields) == 0 {
		return Verdict{}, errors.New("guard answered nothing")
	}
	switch fields[0] {
	case "safe":
		return v, nil
	case "unsafe":
	default:
		return Verdict{}, fmt.Errorf("guard answer starts with %q, want safe or unsafe", truncate(fields[0], 20))
	}
	for _, f := range fields[1:] {
		for _, c := range llamaGuardCodes[strings.ToUpper(f)] {
			v.trip(c, 1)
		}
	}
	if !v.Flagged {
		v.trip(Illegal, 1) // unsafe without a code we know
	}
	v.sortTripped()
	return v, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

var defaultClient = &http.Client{Timeout: 10 * time.Second}

// postJSON posts body as JSON and decodes a 2xx JSON answer into out. Error
// messages carry the status but never the text screened.
func postJSON(ctx context.Context, c *http.Client, url, key string, body, out any) error {
	if c == nil {
		c = defaultClient
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		return fmt.Errorf("moderation endpoint: status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out); err != nil {
		return fmt.Errorf("moderation endpoint: decode: %w", err)
	}
	return nil
}
