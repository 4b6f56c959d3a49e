package llama

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/peerllm/peerllm/internal/testenv"
)

// tinySPM builds a SentencePiece vocabulary: <unk> <s> </s>, the 256 byte
// tokens, then the given pieces with the given scores, typed as GGUF does.
func tinySPM(pieces []string, scores []float32, extra map[string]int32) *spm {
	t := &spm{spacePrefix: true}
	t.addBOS = true
	t.bos, t.eos, t.unk = 1, []int{2}, 0
	t.tokens = []string{"<unk>", "<s>", "</s>"}
	t.types = []int32{tokUnknown, tokControl, tokControl}
	t.scores = []float32{0, 0, 0}
	for b := 0; b < 256; b++ {
		t.tokens = append(t.tokens, "<0x"+strings.ToUpper(string("0123456789abcdef"[b>>4])+string("0123456789abcdef"[b&15]))+">")
		t.types = append(t.types, tokByte)
		t.scores = append(t.scores, 0)
	}
	for i, p := range pieces {
		t.tokens = append(t.tokens, p)
		t.types = append(t.types, tokNormal)
		t.scores = append(t.scores, scores[i])
	}
	for p, typ := range extra {
		t.tokens = append(t.tokens, p)
		t.types = append(t.types, typ)
		t.scores = append(t.scores, 0)
	}
	t.index(true)
	return t
}

func TestSPMEncode(t *testing.T) {
	// ids: 259 " ", 260 "a", 261 "b", 262 "ab", 263 " ab", 264 "c", 265 "bc"
	tk := tinySPM([]string{" ", "a", "b", "ab", " ab", "c", "bc"}, []float32{0, 0, 0, -1, -2, 0, -0.5}, map[string]int32{"<|end|>": tokControl})
	id := func(s string) int { return tk.lookup[s] }
	tests := []struct {
		text string
		want []int
	}{
		{"", []int{1}},
		// "bc" (-0.5) beats "ab" (-1), then " a" is not a token: no more merges.
		{"abc", []int{1, id(" "), id("a"), id("bc")}},
		// "ab" first, then " " + "ab" makes " ab".
		{"ab", []int{1, id(" ab")}},
		// é is not a piece: byte fallback.
		{"é", []int{1, id(" "), 3 + 0xC3, 3 + 0xA9}},
		// A special token splits the text; the space prefix comes back after it.
		{"a<|end|>b", []int{1, id(" "), id("a"), id("<|end|>"), id(" "), id("b")}},
	}
	for _, tc := range tests {
		t.Run(tc.text, func(t *testing.T) {
			if got := tk.encode(tc.text, true); !slices.Equal(got, tc.want) {
				t.Errorf("encode(%q) = %v, want %v", tc.text, got, tc.want)
			}
		})
	}
	// "é" is not a token but "éa" is: llama.cpp merges it, llama2.c turns
	// é into byte tokens first and never merges them.
	tk2 := tinySPM([]string{" ", "a", "éa"}, []float32{0, 0, -1}, nil)
	if got, want := tk2.encode("éa", true), []int{1, tk2.lookup[" "], tk2.lookup["éa"]}; !slices.Equal(got, want) {
		t.Errorf("llama.cpp mode: %v, want %v", got, want)
	}
	tk2.strict = true
	if got, want := tk2.encode("éa", true), []int{1, tk2.lookup[" "], 3 + 0xC3, 3 + 0xA9, tk2.lookup["a"]}; !slices.Equal(got, want) {
		t.Errorf("llama2.c mode: %v, want %v", got, want)
	}
	// Pieces: byte tokens are raw bytes, control tokens are empty, the first
	// piece after BOS loses its leading space.
	if p := tk.piece(1, id(" ab")); p != "ab" {
		t.Errorf("piece after BOS %q", p)
	}
	if p := tk.piece(id("a"), id(" ab")); p != " ab" {
		t.Errorf("piece %q", p)
	}
	if p := tk.piece(id("a"), 3+0xC3); p != "\xc3" {
		t.Errorf("byte piece %q", p)
	}
	if p := tk.piece(id("a"), id("<|end|>")); p != "" {
		t.Errorf("control piece %q", p)
	}
}

// FuzzSPMRoundTrip: decoding the encoding of valid UTF-8 gives the text
// back, with tok512 (llama2.c's tokenizer).
func FuzzSPMRoundTrip(f *testing.F) {
	data, err := os.ReadFile(filepath.Join(testenv.ModelsDir(f), "tok512.bin"))
	if err != nil {
		f.Fatal(err)
	}
	tk, err := loadTokenizerBin(data, 0)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"Once upon a time", "  two spaces", "naïve café ☕", "tab\tand\nnewline", "1234567890", "日本語"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) || s == "" {
			return
		}
		ids := tk.encode(s, true)
		var b strings.Builder
		for i := 1; i < len(ids); i++ {
			b.WriteString(tk.piece(ids[i-1], ids[i]))
		}
		if b.String() != s {
			t.Errorf("round trip %q -> %v -> %q", s, ids, b.String())
		}
	})
}

func TestPreTokenizers(t *testing.T) {
	const in = "Hello world!! 123456 it's\n\n  x"
	tests := []struct {
		name string
		fn   func(string) []string
		text string
		want []string
	}{
		{"gpt2", splitGPT2, in, []string{"Hello", " world", "!!", " 123456", " it", "'s", "\n\n ", " x"}},
		{"llama3", func(s string) []string { return splitLlama3(s, 3) }, in, []string{"Hello", " world", "!!", " ", "123", "456", " it", "'s", "\n\n", " ", " x"}},
		{"qwen2", func(s string) []string { return splitLlama3(s, 1) }, "ab 12 IT'S", []string{"ab", " ", "1", "2", " IT", "'S"}},
		{"llama3 folds case", func(s string) []string { return splitLlama3(s, 3) }, "IT'S", []string{"IT", "'S"}},
		{"smollm", splitSmolLM, "a 12b", []string{"a", " ", "1", "2", "b"}},
		{"gpt2 trailing space", splitGPT2, "a  ", []string{"a", "  "}},
		{"llama3 punct newline", func(s string) []string { return splitLlama3(s, 3) }, "x.\n\ny", []string{"x", ".\n\n", "y"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.fn(tc.text)
			if !slices.Equal(got, tc.want) {
				t.Errorf("split(%q) = %q, want %q", tc.text, got, tc.want)
			}
			if strings.Join(got, "") != tc.text {
				t.Errorf("pieces do not cover the text")
			}
		})
	}
}

func TestBPE(t *testing.T) {
	// Byte-level tokens: GPT-2 maps ' ' to 'Ġ' (U+0120) and '\n' to 'Ċ'.
	tokens := []string{"<|bos|>", "<|eot|>", "a", "b", "c", "Ġ", "Ċ", "ab", "abc", "Ġa", "é"[0:0] + "Ã", "©"}
	types := make([]int32, len(tokens))
	for i := range types {
		types[i] = tokNormal
	}
	types[0], types[1] = tokControl, tokControl
	merges := []string{"a b", "ab c", "Ġ a"}
	tk, err := newBPE(tokens, types, merges, "gpt2")
	if err != nil {
		t.Fatal(err)
	}
	tk.addBOS, tk.bos, tk.eos = true, 0, []int{1}
	id := func(s string) int { return tk.lookup[s] }
	tests := []struct {
		text string
		want []int
	}{
		// "Ġ a" ranks below "a b": " abc" becomes Ġ + abc, not Ġa + bc.
		{"abc abc", []int{0, id("abc"), id("Ġ"), id("abc")}},
		{" a", []int{0, id("Ġa")}},
		{"a\n", []int{0, id("a"), id("Ċ")}},
		// é is bytes C3 A9, which map to "Ã" and "©".
		{"é", []int{0, id("Ã"), id("©")}},
		{"a<|eot|>b", []int{0, id("a"), 1, id("b")}},
	}
	for _, tc := range tests {
		t.Run(tc.text, func(t *testing.T) {
			got := tk.encode(tc.text, true)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("encode(%q) = %v, want %v", tc.text, got, tc.want)
			}
			var b strings.Builder
			for i := 1; i < len(got); i++ {
				b.WriteString(tk.piece(got[i-1], got[i]))
			}
			want := strings.ReplaceAll(tc.text, "<|eot|>", "")
			if b.String() != want {
				t.Errorf("decode = %q, want %q", b.String(), want)
			}
		})
	}
	if _, err := newBPE(tokens, types, merges, "mystery-pre"); err == nil || !strings.Contains(err.Error(), "mystery-pre") {
		t.Errorf("unknown pre-tokenizer: %v", err)
	}
}
