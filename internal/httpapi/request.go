package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/peerllm/peerllm/internal/engine"
)

// Limits on consumer input. They keep a single request from tying up the
// orchestrator; a host's context window is the real bound on prompts.
const (
	maxChoices   = 8
	maxStops     = 4
	maxStopLen   = 256
	maxMaxTokens = 1 << 16
	maxMessages  = 1024
	bodyTimeout  = 30 * time.Second
)

// wireRequest is the union of /v1/chat/completions and /v1/completions
// request bodies: the fields PeerLLM reads. Unknown fields are ignored, as
// OpenAI clients send many optional ones.
type wireRequest struct {
	Model               *string          `json:"model"`
	Messages            json.RawMessage  `json:"messages"`
	Prompt              json.RawMessage  `json:"prompt"`
	N                   *int             `json:"n"`
	MaxTokens           *int             `json:"max_tokens"`
	MaxCompletionTokens *int             `json:"max_completion_tokens"`
	Temperature         *float64         `json:"temperature"`
	TopP                *float64         `json:"top_p"`
	Seed                *int64           `json:"seed"`
	Stop                json.RawMessage  `json:"stop"`
	Stream              *bool            `json:"stream"`
	StreamOptions       *streamOptions   `json:"stream_options"`
	User                *string          `json:"user"` // accepted, never used or forwarded
	Redundancy          *string          `json:"redundancy"`
	Echo                *bool            `json:"echo"`
	Logprobs            json.RawMessage  `json:"logprobs"`
	Tools               json.RawMessage  `json:"tools"`
	ResponseFormat      *json.RawMessage `json:"response_format"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// parsed is a validated request.
type parsed struct {
	model        string
	prompt       string
	messages     []engine.Message
	n            int
	maxTokens    int
	maxParam     string // max_tokens or max_completion_tokens
	stop         []string
	sampling     engine.Sampling
	seeded       bool
	stream       bool
	includeUsage bool
	mode         string
}

// readBody reads at most limit bytes of r's body and checks it is UTF-8.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *Error) {
	// A client gets bodyTimeout to send its body, so a trickling one cannot
	// hold a connection; the answer itself may stream for as long as needed.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(bodyTimeout))
	defer rc.SetReadDeadline(time.Time{})
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &Error{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error", Code: "request_too_large", Message: "The request body is larger than the server accepts."}
		}
		return nil, badRequest("", "Could not read the request body.")
	}
	if !utf8.Valid(body) {
		return nil, badRequest("invalid_encoding", "The request body is not valid UTF-8.")
	}
	return body, nil
}

// parseRequest decodes and validates a request body for endpoint ("chat" or
// "completions").
func parseRequest(body []byte, endpoint string) (*parsed, *Error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, badRequest("", "The request body is empty; send a JSON object.")
	}
	var wr wireRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&wr); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			field := te.Field
			if field == "" {
				return nil, badRequest("", "The request body must be a JSON object.")
			}
			kind := jsonKind(te.Type.String())
			if num, ok := strings.CutPrefix(te.Value, "number "); ok && kind == "an integer" && !strings.ContainsAny(num, ".eE") {
				// A whole number too large for the field, not a wrong type.
				return nil, badParam(field, "'%s' is out of range.", field)
			}
			return nil, badParam(field, "Invalid type for '%s': expected %s.", field, kind)
		}
		return nil, badRequest("", "The request body is not valid JSON.")
	}
	if dec.More() {
		return nil, badRequest("", "The request body holds more than one JSON value.")
	}
	p := &parsed{n: 1}
	if wr.Model == nil || *wr.Model == "" {
		return nil, badParam("model", "'model' is required.")
	}
	p.model = *wr.Model

	switch endpoint {
	case "chat":
		if len(wr.Messages) == 0 || string(wr.Messages) == "null" {
			return nil, badParam("messages", "'messages' is required.")
		}
		msgs, e := parseMessages(wr.Messages)
		if e != nil {
			return nil, e
		}
		p.messages = msgs
	default:
		if len(wr.Prompt) == 0 || string(wr.Prompt) == "null" {
			return nil, badParam("prompt", "'prompt' is required.")
		}
		prompt, e := parsePrompt(wr.Prompt)
		if e != nil {
			return nil, e
		}
		p.prompt = prompt
	}

	if wr.N != nil {
		if *wr.N < 1 || *wr.N > maxChoices {
			return nil, badParam("n", "'n' must be between 1 and %d.", maxChoices)
		}
		p.n = *wr.N
	}
	maxTok, param := wr.MaxTokens, "max_tokens"
	if wr.MaxCompletionTokens != nil {
		maxTok, param = wr.MaxCompletionTokens, "max_completion_tokens"
	}
	if maxTok != nil {
		if *maxTok < 1 || *maxTok > maxMaxTokens {
			return nil, badParam(param, "'%s' must be between 1 and %d.", param, maxMaxTokens)
		}
		p.maxTokens, p.maxParam = *maxTok, param
	}
	if wr.Temperature != nil {
		if *wr.Temperature < 0 || *wr.Temperature > 2 {
			return nil, badParam("temperature", "'temperature' must be between 0 and 2.")
		}
		p.sampling.Temperature = float32(*wr.Temperature)
	} else {
		p.sampling.Temperature = 1 // OpenAI's default
	}
	if wr.TopP != nil {
		if *wr.TopP < 0 || *wr.TopP > 1 {
			return nil, badParam("top_p", "'top_p' must be between 0 and 1.")
		}
		p.sampling.TopP = float32(*wr.TopP)
	}
	if wr.Seed != nil {
		p.sampling.Seed = uint64(*wr.Seed)
		p.seeded = true
	}
	if len(wr.Stop) > 0 && string(wr.Stop) != "null" {
		stops, e := parseStop(wr.Stop)
		if e != nil {
			return nil, e
		}
		p.stop = stops
	}
	if wr.Stream != nil {
		p.stream = *wr.Stream
	}
	if wr.StreamOptions != nil {
		if !p.stream {
			return nil, badParam("stream_options", "'stream_options' is only allowed when 'stream' is true.")
		}
		p.includeUsage = wr.StreamOptions.IncludeUsage
	}
	p.mode = "parallel"
	if wr.Redundancy != nil {
		switch *wr.Redundancy {
		case "parallel", "hedged", "off":
			p.mode = *wr.Redundancy
		default:
			return nil, badParam("redundancy", "'redundancy' must be one of parallel, hedged, off.")
		}
	}
	if wr.Echo != nil && *wr.Echo {
		return nil, badParam("echo", "'echo' is not supported.")
	}
	if isSet(wr.Logprobs) && string(wr.Logprobs) != "false" {
		return nil, badParam("logprobs", "'logprobs' is not supported.")
	}
	if isSet(wr.Tools) && string(wr.Tools) != "[]" {
		return nil, badParam("tools", "'tools' is not supported.")
	}
	return p, nil
}

func isSet(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" }

func jsonKind(goType string) string {
	switch {
	case strings.Contains(goType, "int"):
		return "an integer"
	case strings.Contains(goType, "float"):
		return "a number"
	case strings.Contains(goType, "bool"):
		return "a boolean"
	case strings.Contains(goType, "string"):
		return "a string"
	}
	return "an object"
}

type wireMessage struct {
	Role    *string         `json:"role"`
	Content json.RawMessage `json:"content"`
}

type contentPart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

func parseMessages(raw json.RawMessage) ([]engine.Message, *Error) {
	var wms []wireMessage
	if err := json.Unmarshal(raw, &wms); err != nil {
		return nil, badParam("messages", "'messages' must be an array of objects with 'role' and 'content'.")
	}
	if len(wms) == 0 {
		return nil, badParam("messages", "'messages' must not be empty.")
	}
	if len(wms) > maxMessages {
		return nil, badParam("messages", "'messages' may hold at most %d messages.", maxMessages)
	}
	out := make([]engine.Message, len(wms))
	for i, m := range wms {
		param := "messages[" + strconv.Itoa(i) + "]"
		if m.Role == nil {
			return nil, badParam(param+".role", "'%s.role' is required.", param)
		}
		role := *m.Role
		if role == "developer" {
			role = "system"
		}
		switch role {
		case "system", "user", "assistant", "tool":
		default:
			return nil, badParam(param+".role", "'%s.role' must be one of system, developer, user, assistant, tool.", param)
		}
		var text string
		switch {
		case !isSet(m.Content):
			if role != "assistant" {
				return nil, badParam(param+".content", "'%s.content' is required.", param)
			}
		case m.Content[0] == '"':
			if err := json.Unmarshal(m.Content, &text); err != nil {
				return nil, badParam(param+".content", "'%s.content' must be a string or an array of text parts.", param)
			}
		case m.Content[0] == '[':
			var parts []contentPart
			if err := json.Unmarshal(m.Content, &parts); err != nil {
				return nil, badParam(param+".content", "'%s.content' must be a string or an array of text parts.", param)
			}
			var b strings.Builder
			for _, part := range parts {
				if part.Type != "text" {
					return nil, badParam(param+".content", "Only text content parts are supported.")
				}
				b.WriteString(part.Text)
			}
			text = b.String()
		default:
			return nil, badParam(param+".content", "'%s.content' must be a string or an array of text parts.", param)
		}
		out[i] = engine.Message{Role: role, Content: text}
	}
	return out, nil
}

func parsePrompt(raw json.RawMessage) (string, *Error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if s == "" {
			return "", badParam("prompt", "'prompt' must not be empty.")
		}
		return s, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err == nil {
		if len(list) != 1 {
			return "", badParam("prompt", "'prompt' must be a string or an array holding exactly one string.")
		}
		if list[0] == "" {
			return "", badParam("prompt", "'prompt' must not be empty.")
		}
		return list[0], nil
	}
	return "", badParam("prompt", "'prompt' must be a string.")
}

func parseStop(raw json.RawMessage) ([]string, *Error) {
	var list []string
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		list = []string{s}
	} else if err := json.Unmarshal(raw, &list); err != nil {
		return nil, badParam("stop", "'stop' must be a string or an array of strings.")
	}
	if len(list) > maxStops {
		return nil, badParam("stop", "'stop' may hold at most %d sequences.", maxStops)
	}
	for _, s := range list {
		if s == "" || len(s) > maxStopLen {
			return nil, badParam("stop", "Each stop sequence must be 1 to %d bytes long.", maxStopLen)
		}
	}
	return list, nil
}

// inputBytes is the size of the prompt or of all message contents.
func (p *parsed) inputBytes() int {
	n := len(p.prompt)
	for _, m := range p.messages {
		n += len(m.Content)
	}
	return n
}
