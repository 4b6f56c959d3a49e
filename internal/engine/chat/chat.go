// Package chat turns chat messages into the prompt text a model was trained
// on, following the chat template stored in the model's GGUF metadata
// (tokenizer.chat_template). It recognises the template's family (ChatML,
// Llama 3, Llama 2, Mistral, Gemma, Phi-3, Zephyr) and renders it with a
// hand-written renderer verified byte for byte against Jinja2's output of the
// real templates (testdata/golden.json). It does not execute Jinja: a
// template is untrusted input from a model file, and the families above
// cover the models hosts run. Engines (internal/engine/...) import it; it
// imports only internal/engine.
package chat

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"github.com/peerllm/peerllm/internal/engine"
)

// Family is a chat template family: the layout of turns around messages.
type Family int

// Families Detect recognises.
const (
	// Plain is a model without a template: message contents joined by "\n".
	Plain Family = iota
	// Unknown is a template of no known family; it renders as ChatML
	// without a default system prompt.
	Unknown
	ChatML  // <|im_start|>role\n...<|im_end|> (Qwen, SmolLM, Hermes, Yi)
	Llama3  // <|start_header_id|>role<|end_header_id|> (Llama 3, 3.1, 3.2, 3.3)
	Llama2  // <s>[INST] <<SYS>>...<</SYS>> ... [/INST] (Llama 2 chat)
	Mistral // [INST] ... [/INST] without <<SYS>> (Mistral v0.1-v0.3, Mixtral)
	Gemma   // <start_of_turn>user|model (Gemma 1, 2, 3)
	Phi3    // <|user|>\n...<|end|> (Phi-3, Phi-3.5)
	Zephyr  // <|user|>\n...</s> (Zephyr, TinyLlama chat)
)

var familyNames = [...]string{"plain", "unknown", "chatml", "llama3", "llama2", "mistral", "gemma", "phi3", "zephyr"}

// String returns the family's lowercase name.
func (f Family) String() string {
	if int(f) < len(familyNames) {
		return familyNames[f]
	}
	return fmt.Sprintf("family(%d)", int(f))
}

// EndOfTurn returns the text that closes an assistant turn in this family,
// which an engine may use as an extra stop sequence ("" when the family ends
// turns with the EOS token or has no turns).
func (f Family) EndOfTurn() string {
	switch f {
	case ChatML, Unknown:
		return "<|im_end|>"
	case Llama3:
		return "<|eot_id|>"
	case Gemma:
		return "<end_of_turn>"
	case Phi3:
		return "<|end|>"
	}
	return ""
}

// Options are the values a template reads besides the messages.
type Options struct {
	BOS string // the model's BOS token text, e.g. "<s>"; written where the template writes bos_token
	EOS string // the model's EOS token text, e.g. "</s>"; written where the template writes eos_token
	// AddGenerationPrompt appends the header of an assistant turn, so the
	// model's next tokens are the answer.
	AddGenerationPrompt bool
}

// Detect returns the family of a chat template source. An empty template is
// Plain; a template of no known family is Unknown.
func Detect(template string) Family {
	t := template
	switch {
	case strings.TrimSpace(t) == "":
		return Plain
	case strings.Contains(t, "<|im_start|>"):
		return ChatML
	case strings.Contains(t, "<|start_header_id|>"):
		return Llama3
	case strings.Contains(t, "<start_of_turn>"):
		return Gemma
	case strings.Contains(t, "<|user|>") && strings.Contains(t, "<|end|>"):
		return Phi3
	case strings.Contains(t, "<|user|>"):
		return Zephyr
	case strings.Contains(t, "[INST]") && strings.Contains(t, "<<SYS>>"):
		return Llama2
	case strings.Contains(t, "[INST]"):
		return Mistral
	}
	return Unknown
}

// Render renders msgs with template. The result includes opts.BOS where the
// template writes it, so a caller tokenizing it must not add another BOS.
// Roles must be "system", "user", "assistant" or "tool"; an unknown role, a
// role the family cannot express (e.g. "tool" for Gemma) or no messages is an
// error wrapping engine.ErrBadRequest. Unlike the Jinja originals it does not
// insist that user and assistant turns alternate. Family-specific
// conventions (system folding, fixed dates) are in docs/ENGINES.md.
func Render(template string, msgs []engine.Message, opts Options) (string, error) {
	if len(msgs) == 0 {
		return "", fmt.Errorf("render chat: no messages: %w", engine.ErrBadRequest)
	}
	for i, m := range msgs {
		switch m.Role {
		case "system", "user", "assistant", "tool":
		default:
			return "", fmt.Errorf("render chat: message %d has unknown role %q: %w", i, m.Role, engine.ErrBadRequest)
		}
	}
	r := renderer{tmpl: template, opts: opts}
	if strings.Contains(template, "bos_token") {
		r.bos = opts.BOS
	}
	if strings.Contains(template, "eos_token") {
		r.eos = opts.EOS
	}
	var err error
	switch Detect(template) {
	case Plain:
		parts := make([]string, len(msgs))
		for i, m := range msgs {
			parts[i] = m.Content
		}
		return strings.Join(parts, "\n"), nil
	case ChatML:
		r.chatml(msgs, true)
	case Unknown:
		r.chatml(msgs, false)
	case Llama3:
		r.llama3(msgs)
	case Llama2:
		err = r.llama2(msgs)
	case Mistral:
		err = r.mistral(msgs)
	case Gemma:
		err = r.gemma(msgs)
	case Phi3:
		err = r.phi3(msgs)
	case Zephyr:
		err = r.zephyr(msgs)
	}
	if err != nil {
		return "", err
	}
	return r.b.String(), nil
}

type renderer struct {
	tmpl     string
	opts     Options
	bos, eos string
	b        strings.Builder
}

func (r *renderer) w(parts ...string) {
	for _, p := range parts {
		r.b.WriteString(p)
	}
}

func unsupported(f Family, i int, role string) error {
	return fmt.Errorf("render chat: %s templates have no %q turn (message %d): %w", f, role, i, engine.ErrBadRequest)
}

// trim is Python's str.strip(), which Jinja's trim filter and .strip() use.
func trim(s string) string {
	return strings.TrimFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
	})
}

// foldSystem moves a leading system message into the first remaining
// message, as "system\n\nuser", for families without a system turn.
func foldSystem(msgs []engine.Message) []engine.Message {
	if len(msgs) < 2 || msgs[0].Role != "system" {
		return msgs
	}
	out := append([]engine.Message(nil), msgs[1:]...)
	out[0].Content = msgs[0].Content + "\n\n" + out[0].Content
	return out
}

// chatDefaultSystem finds a literal default system prompt in a ChatML
// template: '<|im_start|>system\n' directly followed by text and <|im_end|>
// inside one string literal (Qwen 2/2.5, SmolLM 2).
var chatDefaultSystem = regexp.MustCompile(`<\|im_start\|>system(?:\\n|\n)([^'"{}<]+)<\|im_end\|>`)

func (r *renderer) chatml(msgs []engine.Message, known bool) {
	if known && msgs[0].Role != "system" {
		if m := chatDefaultSystem.FindStringSubmatch(r.tmpl); m != nil {
			r.w("<|im_start|>system\n", strings.ReplaceAll(m[1], `\n`, "\n"), "<|im_end|>\n")
		}
	}
	toolResponse := known && strings.Contains(r.tmpl, "<tool_response>")
	for i, m := range msgs {
		if m.Role == "tool" && toolResponse {
			// Qwen 2.5 groups consecutive tool results into one user turn.
			if i == 0 || msgs[i-1].Role != "tool" {
				r.w("<|im_start|>user")
			}
			r.w("\n<tool_response>\n", m.Content, "\n</tool_response>")
			if i == len(msgs)-1 || msgs[i+1].Role != "tool" {
				r.w("<|im_end|>\n")
			}
			continue
		}
		r.w("<|im_start|>", m.Role, "\n", m.Content, "<|im_end|>\n")
	}
	if r.opts.AddGenerationPrompt {
		r.w("<|im_start|>assistant\n")
	}
}

// llama3Date is the date Llama 3.1+ templates write when the renderer has no
// strftime_now; a fixed date keeps the prompt identical on every host, which
// continuation on another host needs.
const llama3Date = "26 Jul 2024"

func (r *renderer) llama3(msgs []engine.Message) {
	r.w(r.bos)
	dated := strings.Contains(r.tmpl, "Cutting Knowledge Date")
	if dated {
		system := ""
		if msgs[0].Role == "system" {
			system = trim(msgs[0].Content)
			msgs = msgs[1:]
		}
		r.w("<|start_header_id|>system<|end_header_id|>\n\n",
			"Cutting Knowledge Date: December 2023\nToday Date: ", llama3Date, "\n\n",
			system, "<|eot_id|>")
	}
	for _, m := range msgs {
		if dated && m.Role == "tool" {
			// The 3.1+ templates pass tool output through tojson, which
			// quotes a plain string.
			r.w("<|start_header_id|>ipython<|end_header_id|>\n\n", jsonString(m.Content), "<|eot_id|>")
			continue
		}
		r.w("<|start_header_id|>", m.Role, "<|end_header_id|>\n\n", trim(m.Content), "<|eot_id|>")
	}
	if r.opts.AddGenerationPrompt {
		r.w("<|start_header_id|>assistant<|end_header_id|>\n\n")
	}
}

// jsonString is json.dumps(s, ensure_ascii=False), the tojson filter of
// Hugging Face transformers.
func jsonString(s string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}

func (r *renderer) llama2(msgs []engine.Message) error {
	system, hasSystem := "", false
	if msgs[0].Role == "system" {
		system, hasSystem = msgs[0].Content, true
		msgs = msgs[1:]
	}
	for i, m := range msgs {
		content := m.Content
		if i == 0 && hasSystem {
			content = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + content
		}
		switch m.Role {
		case "user":
			r.w(r.bos, "[INST] ", trim(content), " [/INST]")
		case "assistant":
			r.w(" ", trim(content), " ", r.eos)
		default:
			return unsupported(Llama2, i, m.Role)
		}
	}
	return nil
}

func (r *renderer) mistral(msgs []engine.Message) error {
	// v0.3 and later put the system prompt in the last user turn, and close
	// [INST] without a space; v0.1/v0.2 have no system turn (folded into the
	// first user turn) and pad [/INST] with a space.
	if strings.Contains(r.tmpl, "system_message is defined") {
		system, hasSystem := "", false
		if msgs[0].Role == "system" {
			system, hasSystem = msgs[0].Content, true
			msgs = msgs[1:]
		}
		open := "[INST]"
		if strings.Contains(r.tmpl, `"[INST] "`) || strings.Contains(r.tmpl, `'[INST] '`) {
			open = "[INST] "
		}
		r.w(r.bos)
		for i, m := range msgs {
			switch m.Role {
			case "user":
				if i == len(msgs)-1 && hasSystem {
					r.w(open, system, "\n\n", m.Content, "[/INST]")
				} else {
					r.w(open, m.Content, "[/INST]")
				}
			case "assistant":
				r.w(" ", trim(m.Content), r.eos)
			default:
				return unsupported(Mistral, i, m.Role)
			}
		}
		return nil
	}
	r.w(r.bos)
	for i, m := range foldSystem(msgs) {
		switch m.Role {
		case "user":
			r.w("[INST] ", m.Content, " [/INST]")
		case "assistant":
			r.w(m.Content, r.eos)
		default:
			return unsupported(Mistral, i, m.Role)
		}
	}
	return nil
}

func (r *renderer) gemma(msgs []engine.Message) error {
	r.w(r.bos)
	for i, m := range foldSystem(msgs) {
		role := m.Role
		switch role {
		case "user":
		case "assistant":
			role = "model"
		default:
			return unsupported(Gemma, i, m.Role)
		}
		r.w("<start_of_turn>", role, "\n", trim(m.Content), "<end_of_turn>\n")
	}
	if r.opts.AddGenerationPrompt {
		r.w("<start_of_turn>model\n")
	}
	return nil
}

func (r *renderer) phi3(msgs []engine.Message) error {
	if !strings.Contains(r.tmpl, "<|system|>") {
		// The April 2024 Phi-3 template: no system turn, and every user
		// turn already opens the assistant's.
		r.w(r.bos)
		for i, m := range foldSystem(msgs) {
			switch m.Role {
			case "user":
				r.w("<|user|>\n", m.Content, "<|end|>\n<|assistant|>\n")
			case "assistant":
				r.w(m.Content, "<|end|>\n")
			default:
				return unsupported(Phi3, i, m.Role)
			}
		}
		return nil
	}
	for i, m := range msgs {
		if m.Role == "tool" {
			return unsupported(Phi3, i, m.Role)
		}
		r.w("<|", m.Role, "|>\n", m.Content, "<|end|>\n")
	}
	if r.opts.AddGenerationPrompt {
		r.w("<|assistant|>\n")
	} else {
		r.w(r.eos)
	}
	return nil
}

func (r *renderer) zephyr(msgs []engine.Message) error {
	for i, m := range msgs {
		if m.Role == "tool" {
			return unsupported(Zephyr, i, m.Role)
		}
		r.w("<|", m.Role, "|>\n", m.Content, r.eos, "\n")
	}
	if r.opts.AddGenerationPrompt {
		r.w("<|assistant|>\n")
	}
	return nil
}
