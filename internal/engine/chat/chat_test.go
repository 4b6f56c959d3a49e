package chat_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/peerllm/peerllm/internal/engine"
	"github.com/peerllm/peerllm/internal/engine/chat"
)

// goldenCase is one rendering of a real template by Jinja2 (see
// testdata/gen_golden.py, which wrote testdata/golden.json).
type goldenCase struct {
	Template            string           `json:"template"`
	Conversation        string           `json:"conversation"`
	BOS                 string           `json:"bos"`
	EOS                 string           `json:"eos"`
	AddGenerationPrompt bool             `json:"add_generation_prompt"`
	Messages            []engine.Message `json:"messages"`
	Want                string           `json:"want"`
}

func readTemplate(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "templates", name+".jinja"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRenderMatchesJinja(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []goldenCase
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 100 {
		t.Fatalf("golden.json has %d cases, want at least 100", len(cases))
	}
	for _, c := range cases {
		name := c.Template + "/" + c.Conversation
		if !c.AddGenerationPrompt {
			name += "/no-gen"
		}
		t.Run(name, func(t *testing.T) {
			got, err := chat.Render(readTemplate(t, c.Template), c.Messages, chat.Options{
				BOS: c.BOS, EOS: c.EOS, AddGenerationPrompt: c.AddGenerationPrompt,
			})
			if err != nil {
				t.Fatal(err)
			}
			if got != c.Want {
				t.Errorf("got\n%q\nwant\n%q", got, c.Want)
			}
		})
	}
}

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		template string
		want     chat.Family
	}{
		{"chatml-openhermes", chat.ChatML},
		{"smollm2", chat.ChatML},
		{"qwen2.5", chat.ChatML},
		{"llama3", chat.Llama3},
		{"llama3.2", chat.Llama3},
		{"llama2", chat.Llama2},
		{"mistral-v0.2", chat.Mistral},
		{"mistral-v0.3", chat.Mistral},
		{"gemma2", chat.Gemma},
		{"phi3", chat.Phi3},
		{"phi3-april", chat.Phi3},
		{"tinyllama", chat.Zephyr},
	} {
		t.Run(tc.template, func(t *testing.T) {
			if got := chat.Detect(readTemplate(t, tc.template)); got != tc.want {
				t.Errorf("Detect = %v, want %v", got, tc.want)
			}
		})
	}
	if got := chat.Detect("  \n"); got != chat.Plain {
		t.Errorf("Detect(blank) = %v, want plain", got)
	}
	if got := chat.Detect("{% for m in messages %}### {{ m.content }}{% endfor %}"); got != chat.Unknown {
		t.Errorf("Detect(other) = %v, want unknown", got)
	}
}

func TestRenderPlainAndUnknown(t *testing.T) {
	msgs := []engine.Message{
		{Role: "system", Content: "Be brief."},
		{Role: "user", Content: "Once upon a time"},
	}
	got, err := chat.Render("", msgs, chat.Options{BOS: "<s>", AddGenerationPrompt: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := "Be brief.\nOnce upon a time"; got != want {
		t.Errorf("plain: got %q, want %q", got, want)
	}
	got, err = chat.Render("{% for m in messages %}### {{ m.content }}{% endfor %}", msgs, chat.Options{AddGenerationPrompt: true})
	if err != nil {
		t.Fatal(err)
	}
	want := "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nOnce upon a time<|im_end|>\n<|im_start|>assistant\n"
	if got != want {
		t.Errorf("unknown: got %q, want %q", got, want)
	}
}

func TestRenderErrors(t *testing.T) {
	user := engine.Message{Role: "user", Content: "hi"}
	tool := engine.Message{Role: "tool", Content: "{}"}
	for _, tc := range []struct {
		name, template string
		msgs           []engine.Message
	}{
		{"no messages", "chatml-openhermes", nil},
		{"bad role", "chatml-openhermes", []engine.Message{user, {Role: "wizard", Content: "x"}}},
		{"bad role plain", "", []engine.Message{{Role: "", Content: "x"}}},
		{"tool in gemma", "gemma2", []engine.Message{user, tool}},
		{"tool in mistral", "mistral-v0.3", []engine.Message{user, tool}},
		{"tool in llama2", "llama2", []engine.Message{user, tool}},
		{"tool in phi3", "phi3", []engine.Message{user, tool}},
		{"late system in gemma", "gemma2", []engine.Message{user, {Role: "system", Content: "x"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmpl := ""
			if tc.template != "" {
				tmpl = readTemplate(t, tc.template)
			}
			_, err := chat.Render(tmpl, tc.msgs, chat.Options{})
			if !errors.Is(err, engine.ErrBadRequest) {
				t.Fatalf("err = %v, want ErrBadRequest", err)
			}
		})
	}
}

func TestEndOfTurn(t *testing.T) {
	for f, want := range map[chat.Family]string{
		chat.ChatML: "<|im_end|>", chat.Llama3: "<|eot_id|>", chat.Gemma: "<end_of_turn>",
		chat.Phi3: "<|end|>", chat.Mistral: "", chat.Plain: "",
	} {
		if got := f.EndOfTurn(); got != want {
			t.Errorf("%v.EndOfTurn() = %q, want %q", f, got, want)
		}
	}
}

// FuzzRender checks that any template and message text renders without a
// panic, and that a known family's output contains every message content
// (or its trimmed form).
func FuzzRender(f *testing.F) {
	f.Add("{{ bos_token }}[INST]", "hello", "  world ")
	f.Add("<|im_start|>system\\nX<|im_end|>", "a", "b")
	f.Add("", "x", "y")
	f.Fuzz(func(t *testing.T, tmpl, a, b string) {
		msgs := []engine.Message{{Role: "system", Content: a}, {Role: "user", Content: b}}
		out, err := chat.Render(tmpl, msgs, chat.Options{BOS: "<s>", EOS: "</s>", AddGenerationPrompt: true})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, strings.TrimSpace(b)) {
			t.Errorf("output %q lacks user content %q", out, b)
		}
	})
}

func BenchmarkRender(b *testing.B) {
	msgs := []engine.Message{
		{Role: "system", Content: "You are a helpful assistant"},
		{Role: "user", Content: "Hello"},
		{Role: "assistant", Content: "Hi there, how can I help?"},
		{Role: "user", Content: "Tell me a story about a cat."},
	}
	for _, name := range []string{"qwen2.5", "llama3.2", "gemma2", "mistral-v0.3"} {
		tmpl, err := os.ReadFile(filepath.Join("testdata", "templates", name+".jinja"))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := chat.Render(string(tmpl), msgs, chat.Options{BOS: "<s>", EOS: "</s>", AddGenerationPrompt: true}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
