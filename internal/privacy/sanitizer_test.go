package privacy_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/peerllm/peerllm/internal/privacy"
)

// fakeBackend is a labelled test double for an operator's OpenAI-compatible
// server (we cannot run a real model backend here). It answers like a model
// that lists the identifiers it was told about in labels, and records the
// requests it got.
type fakeBackend struct {
	labels map[string]string // text → type
	status int
	reply  string // raw content to answer instead, when set
	seen   []map[string]any
	auth   []string
}

func (f *fakeBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/chat/completions" || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	var req map[string]any
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	f.seen = append(f.seen, req)
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	if f.status != 0 {
		w.WriteHeader(f.status)
		return
	}
	msgs := req["messages"].([]any)
	user := msgs[len(msgs)-1].(map[string]any)["content"].(string)
	content := f.reply
	if content == "" {
		type ent struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}
		var out struct {
			Entities []ent `json:"entities"`
		}
		for text, typ := range f.labels {
			if strings.Contains(user, text) {
				out.Entities = append(out.Entities, ent{typ, text})
			}
		}
		out.Entities = append(out.Entities, ent{"PERSON", "Nobody In The Text"}) // a hallucination
		b, _ := json.Marshal(out)
		content = "```json\n" + string(b) + "\n```"
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"choices": []any{map[string]any{"message": map[string]any{"role": "assistant", "content": content}}}})
}

func TestLLMSanitizer(t *testing.T) {
	fb := &fakeBackend{labels: map[string]string{"Zyxwv Qrstu": "PERSON", "Blorptech": "ORGANIZATION"}}
	srv := httptest.NewServer(fb)
	defer srv.Close()
	l := &privacy.LLMSanitizer{BaseURL: srv.URL + "/v1", APIKey: "k1", Model: "trusted-model", Client: srv.Client()}
	text := "Ünïcode first: Zyxwv Qrstu works at Blorptech; Zyxwv Qrstu again."
	ents, err := l.Detect(context.Background(), text)
	if err != nil {
		t.Fatal(err)
	}
	runes := []rune(text)
	var got []string
	for _, e := range ents {
		if string(runes[e.Start:e.End]) != e.Text {
			t.Fatalf("offsets %+v do not match the text", e)
		}
		got = append(got, e.Type+":"+e.Text)
	}
	if want := "PERSON:Zyxwv Qrstu|ORGANIZATION:Blorptech|PERSON:Zyxwv Qrstu"; strings.Join(got, "|") != want {
		t.Fatalf("got %v, want %s (the hallucinated name must be ignored)", got, want)
	}
	if fb.auth[0] != "Bearer k1" || fb.seen[0]["model"] != "trusted-model" || fb.seen[0]["temperature"] != 0.0 {
		t.Fatalf("request: auth %q body %v", fb.auth[0], fb.seen[0])
	}

	// The second opinion merges into the session's stand-ins.
	s := newScanner(t, privacy.Config{})
	ss := s.NewSession()
	anon := ss.AnonymizeWith(text, ents)
	if strings.Contains(anon, "Zyxwv") || strings.Contains(anon, "Blorptech") {
		t.Fatalf("sanitizer detections not applied: %s", anon)
	}
	r := ss.NewRestorer()
	if back := r.Write(anon) + r.Flush(); back != text {
		t.Fatalf("restore: %q", back)
	}
}

func TestLLMSanitizerErrors(t *testing.T) {
	cases := []struct {
		name string
		fb   *fakeBackend
	}{
		{"status", &fakeBackend{status: http.StatusServiceUnavailable}},
		{"not json", &fakeBackend{reply: "Sure! Here are the names: Bob."}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(c.fb)
			defer srv.Close()
			l := &privacy.LLMSanitizer{BaseURL: srv.URL + "/v1", Model: "m", Client: srv.Client()}
			if _, err := l.Detect(context.Background(), "hello Bob"); err == nil {
				t.Fatal("want an error")
			}
		})
	}
	t.Run("too long", func(t *testing.T) {
		l := &privacy.LLMSanitizer{BaseURL: "http://127.0.0.1:1/v1", MaxChars: 3}
		if _, err := l.Detect(context.Background(), "hello"); !errors.Is(err, privacy.ErrTooLong) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		srv := httptest.NewServer(&fakeBackend{})
		defer srv.Close()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		l := &privacy.LLMSanitizer{BaseURL: srv.URL + "/v1", Client: srv.Client()}
		if _, err := l.Detect(ctx, "hello"); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v", err)
		}
	})
}
