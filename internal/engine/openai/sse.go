package openai

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// maxEvent bounds one server-sent event line.
const maxEvent = 1 << 20

// errNoDone means the stream ended without its "[DONE]" event.
var errNoDone = errors.New("stream ended without [DONE]")

// readSSE calls fn with the data of each server-sent event until the
// stream's "[DONE]"; a stream that ends without it returns errNoDone. Multi-line data fields are joined with "\n"
// as the SSE specification says. An "error:" line (older llama.cpp servers)
// ends the stream with that error.
func readSSE(r io.Reader, fn func(data []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxEvent)
	var data []byte
	dispatch := func() error {
		if len(data) == 0 {
			return nil
		}
		d := data
		data = nil
		if bytes.Equal(bytes.TrimSpace(d), []byte("[DONE]")) {
			return io.EOF
		}
		return fn(d)
	}
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			if err := dispatch(); err != nil {
				return eofNil(err)
			}
		case bytes.HasPrefix(line, []byte("data:")):
			v := bytes.TrimPrefix(bytes.TrimPrefix(line, []byte("data:")), []byte(" "))
			if len(data) > 0 {
				data = append(data, '\n')
			}
			data = append(data, v...)
		case bytes.HasPrefix(line, []byte("error:")):
			var a apiError
			v := bytes.TrimSpace(bytes.TrimPrefix(line, []byte("error:")))
			if json.Unmarshal(v, &a) != nil {
				a.Message = string(v)
			}
			return a.err(0)
		}
		// Comments (":"), event:, id: and retry: lines carry nothing we use.
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("openai engine: read stream: %w", err)
	}
	if err := dispatch(); err != nil {
		return eofNil(err)
	}
	return errNoDone
}

func eofNil(err error) error {
	if err == io.EOF {
		return nil
	}
	return err
}
