package fabric

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// The Chunk is the one message sent per token, so it has a hand-written
// JSON codec: AppendChunk writes the same JSON encoding/json would accept
// for the struct (same field names, omitempty where the struct has it), and
// decodeChunk reads the shape AppendChunk writes without reflection. Any
// other input (escaped strings, unknown fields, nulls, a newer peer's
// additions) falls back to encoding/json, so the wire stays plain JSON and
// both codecs read each other's output: no protocol version change.

// AppendChunk appends the JSON encoding of c to dst.
func AppendChunk(dst []byte, c *Chunk) []byte {
	if !utf8.ValidString(c.TaskID) || !utf8.ValidString(c.FinishReason) || !utf8.ValidString(c.Error) || !utf8.ValidString(c.ErrorCode) {
		return appendJSON(dst, c)
	}
	for i := range c.Tokens {
		if !utf8.ValidString(c.Tokens[i].Text) {
			return appendJSON(dst, c)
		}
	}
	dst = append(dst, `{"task_id":`...)
	dst = appendString(dst, c.TaskID)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendInt(dst, int64(c.Seq), 10)
	if len(c.Tokens) > 0 {
		dst = append(dst, `,"tokens":[`...)
		for i, t := range c.Tokens {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"id":`...)
			dst = strconv.AppendInt(dst, int64(t.ID), 10)
			dst = append(dst, `,"text":`...)
			dst = appendString(dst, t.Text)
			if t.Partial {
				dst = append(dst, `,"partial":true`...)
			}
			dst = append(dst, `,"index":`...)
			dst = strconv.AppendInt(dst, int64(t.Index), 10)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	if c.Done {
		dst = append(dst, `,"done":true`...)
	}
	if c.FinishReason != "" {
		dst = append(dst, `,"finish_reason":`...)
		dst = appendString(dst, c.FinishReason)
	}
	if c.Usage != nil {
		u, err := json.Marshal(c.Usage)
		if err != nil {
			return appendJSON(dst[:0], c)
		}
		dst = append(dst, `,"usage":`...)
		dst = append(dst, u...)
	}
	if c.Error != "" {
		dst = append(dst, `,"error":`...)
		dst = appendString(dst, c.Error)
	}
	if c.ErrorCode != "" {
		dst = append(dst, `,"error_code":`...)
		dst = appendString(dst, c.ErrorCode)
	}
	return append(dst, '}')
}

func appendJSON(dst []byte, c *Chunk) []byte {
	b, err := json.Marshal(c)
	if err != nil {
		return dst // a Chunk has no field json cannot encode
	}
	return append(dst, b...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s (valid UTF-8) as a JSON string.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// decodeChunk fills c from data, with the fast reader when data has the
// plain shape AppendChunk writes, else with encoding/json.
func decodeChunk(data []byte, c *Chunk) error {
	r := chunkReader{data: data}
	if r.chunk(c) {
		return nil
	}
	*c = Chunk{}
	return json.Unmarshal(data, c)
}

// chunkReader is the fast path of decodeChunk. Each method reports false
// at anything it does not handle; the caller then starts over with
// encoding/json.
type chunkReader struct {
	data []byte
	i    int
}

func (r *chunkReader) ws() {
	for r.i < len(r.data) {
		switch r.data[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

func (r *chunkReader) byte(b byte) bool {
	r.ws()
	if r.i < len(r.data) && r.data[r.i] == b {
		r.i++
		return true
	}
	return false
}

// str reads a string without escapes, of valid UTF-8.
func (r *chunkReader) str() (string, bool) {
	if !r.byte('"') {
		return "", false
	}
	start := r.i
	for r.i < len(r.data) {
		c := r.data[r.i]
		switch {
		case c == '"':
			s := r.data[start:r.i]
			r.i++
			if !utf8.Valid(s) {
				return "", false
			}
			return string(s), true
		case c == '\\' || c < 0x20:
			return "", false
		}
		r.i++
	}
	return "", false
}

// key reads an object key as bytes (no allocation) and the colon.
func (r *chunkReader) key() ([]byte, bool) {
	if !r.byte('"') {
		return nil, false
	}
	start := r.i
	for r.i < len(r.data) && r.data[r.i] != '"' {
		if r.data[r.i] == '\\' {
			return nil, false
		}
		r.i++
	}
	if r.i >= len(r.data) {
		return nil, false
	}
	k := r.data[start:r.i]
	r.i++
	return k, r.byte(':')
}

func (r *chunkReader) int() (int, bool) {
	r.ws()
	start := r.i
	if r.i < len(r.data) && r.data[r.i] == '-' {
		r.i++
	}
	digits := r.i
	for r.i < len(r.data) && r.data[r.i] >= '0' && r.data[r.i] <= '9' {
		r.i++
	}
	if r.i == digits || (r.data[digits] == '0' && r.i > digits+1) || (r.i < len(r.data) && (r.data[r.i] == '.' || r.data[r.i] == 'e' || r.data[r.i] == 'E')) {
		return 0, false
	}
	n, err := strconv.Atoi(string(r.data[start:r.i]))
	return n, err == nil
}

func (r *chunkReader) bool() (bool, bool) {
	r.ws()
	rest := r.data[r.i:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		r.i += 4
		return true, true
	case len(rest) >= 5 && string(rest[:5]) == "false":
		r.i += 5
		return false, true
	}
	return false, false
}

// object reads {"k":v,...}, calling field for each key. keys lists the
// known keys: an unknown or repeated one ends the fast path (encoding/json
// has its own rules for those).
func (r *chunkReader) object(keys []string, field func(k string) bool) bool {
	if !r.byte('{') {
		return false
	}
	if r.byte('}') {
		return true
	}
	var seen uint32
	for {
		kb, ok := r.key()
		if !ok {
			return false
		}
		i := 0
		for i < len(keys) && keys[i] != string(kb) {
			i++
		}
		if i == len(keys) || seen&(1<<i) != 0 || !field(keys[i]) {
			return false
		}
		seen |= 1 << i
		if r.byte('}') {
			return true
		}
		if !r.byte(',') {
			return false
		}
	}
}

var (
	chunkKeys = []string{"task_id", "seq", "tokens", "done", "finish_reason", "error", "error_code", "usage"}
	tokenKeys = []string{"id", "text", "partial", "index"}
	usageKeys = []string{"prompt_tokens", "cached_tokens", "completion_tokens", "prompt_eval_us", "generation_us"}
)

func (r *chunkReader) chunk(c *Chunk) bool {
	ok := r.object(chunkKeys, func(k string) bool {
		var ok bool
		switch k {
		case "task_id":
			c.TaskID, ok = r.str()
		case "seq":
			c.Seq, ok = r.int()
		case "tokens":
			ok = r.tokens(c)
		case "done":
			c.Done, ok = r.bool()
		case "finish_reason":
			c.FinishReason, ok = r.str()
		case "error":
			c.Error, ok = r.str()
		case "error_code":
			c.ErrorCode, ok = r.str()
		case "usage":
			ok = r.usage(c)
		}
		return ok
	})
	r.ws()
	return ok && r.i == len(r.data)
}

func (r *chunkReader) tokens(c *Chunk) bool {
	if !r.byte('[') {
		return false
	}
	c.Tokens = []ChunkToken{}
	if r.byte(']') {
		return true
	}
	for {
		var t ChunkToken
		ok := r.object(tokenKeys, func(k string) bool {
			var ok bool
			switch k {
			case "id":
				t.ID, ok = r.int()
			case "text":
				t.Text, ok = r.str()
			case "partial":
				t.Partial, ok = r.bool()
			case "index":
				t.Index, ok = r.int()
			}
			return ok
		})
		if !ok {
			return false
		}
		c.Tokens = append(c.Tokens, t)
		if r.byte(']') {
			return true
		}
		if !r.byte(',') {
			return false
		}
	}
}

func (r *chunkReader) usage(c *Chunk) bool {
	u := &Usage{}
	ok := r.object(usageKeys, func(k string) bool {
		var ok bool
		var n int
		switch k {
		case "prompt_tokens":
			u.PromptTokens, ok = r.int()
		case "cached_tokens":
			u.CachedTokens, ok = r.int()
		case "completion_tokens":
			u.CompletionTokens, ok = r.int()
		case "prompt_eval_us":
			n, ok = r.int()
			u.PromptEvalMicros = int64(n)
		case "generation_us":
			n, ok = r.int()
			u.GenerationMicros = int64(n)
		}
		return ok
	})
	c.Usage = u
	return ok
}
