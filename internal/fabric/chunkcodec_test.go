package fabric

import (
	"encoding/json"
	"reflect"
	"testing"
)

var codecChunks = []struct {
	name string
	c    Chunk
}{
	{"token", Chunk{TaskID: "abc123", Seq: 7, Tokens: []ChunkToken{{ID: 42, Text: " the", Index: 9}}}},
	{"partial", Chunk{TaskID: "t", Seq: 0, Tokens: []ChunkToken{{ID: 3, Partial: true, Index: 0}, {ID: 4, Text: "é", Index: 1}}}},
	{"escapes", Chunk{TaskID: "t", Tokens: []ChunkToken{{Text: "a\"b\\c\nd\te\x01\u2028<&>"}}}},
	{"done", Chunk{TaskID: "t", Seq: 33, Done: true, FinishReason: "length",
		Usage: &Usage{PromptTokens: 5, CachedTokens: 2, CompletionTokens: 32, PromptEvalMicros: 12, GenerationMicros: 3400}}},
	{"error", Chunk{TaskID: "t", Seq: 0, Error: "host is at capacity", ErrorCode: "overloaded"}},
	{"invalid utf-8", Chunk{TaskID: "t", Error: "bad \xff byte", ErrorCode: "internal"}},
	{"negative", Chunk{TaskID: "t", Seq: -1, Tokens: []ChunkToken{{ID: -5, Index: -2}}}},
	{"empty", Chunk{}},
}

// TestAppendChunkReadsLikeJSON checks that the hand-written encoder says
// what encoding/json says, as encoding/json reads it.
func TestAppendChunkReadsLikeJSON(t *testing.T) {
	for _, tt := range codecChunks {
		t.Run(tt.name, func(t *testing.T) {
			std, err := json.Marshal(&tt.c)
			if err != nil {
				t.Fatal(err)
			}
			var want, got Chunk
			if err := json.Unmarshal(std, &want); err != nil {
				t.Fatal(err)
			}
			fast := AppendChunk(nil, &tt.c)
			if err := json.Unmarshal(fast, &got); err != nil {
				t.Fatalf("%s: %v", fast, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("AppendChunk %s reads as %+v, want %+v", fast, got, want)
			}
			var dec Chunk
			if err := Decode(fast, &dec); err != nil || !reflect.DeepEqual(dec, want) {
				t.Fatalf("Decode(AppendChunk) = %+v, %v; want %+v", dec, err, want)
			}
			dec = Chunk{}
			if err := Decode(std, &dec); err != nil || !reflect.DeepEqual(dec, want) {
				t.Fatalf("Decode(json.Marshal) = %+v, %v; want %+v", dec, err, want)
			}
		})
	}
}

// FuzzDecodeChunk checks that the fast chunk reader never disagrees with
// encoding/json: same error or not, same value.
func FuzzDecodeChunk(f *testing.F) {
	for _, tt := range codecChunks {
		f.Add(AppendChunk(nil, &tt.c))
		b, _ := json.Marshal(&tt.c)
		f.Add(b)
	}
	for _, s := range []string{`{"task_id":"a","seq":01}`, `{"seq":1,"seq":2}`, `{"Seq":3}`, `{"tokens":[{"id":1,"id":2}]}`,
		`{"tokens":null}`, `null`, `{"seq":1.5}`, `{"task_id":"\u0041"}`, ` { "seq" : 4 , "done" : false } `, `{"seq":-}`,
		`{"usage":{"prompt_tokens":3,"x":1}}`, `{"tokens":[]}`, `{}`, `{"seq":99999999999999999999}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var want, got Chunk
		werr := json.Unmarshal(data, &want)
		gerr := decodeChunk(data, &got)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%q: json error %v, fast error %v", data, werr, gerr)
		}
		if werr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: fast %+v, json %+v", data, got, want)
		}
	})
}

func BenchmarkChunkCodec(b *testing.B) {
	c := &Chunk{TaskID: "Tq3BzTzDqk5Jx7zuEyBFyV", Seq: 17, Tokens: []ChunkToken{{ID: 1234, Text: " once", Index: 17}}}
	std, _ := json.Marshal(c)
	b.Run("encode/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			json.Marshal(c)
		}
	})
	b.Run("encode/fast", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = AppendChunk(buf[:0], c)
		}
	})
	b.Run("decode/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var c Chunk
			json.Unmarshal(std, &c)
		}
	})
	b.Run("decode/fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var c Chunk
			decodeChunk(std, &c)
		}
	})
}
