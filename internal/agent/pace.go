package agent

import (
	"context"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// limiter caps the host's token rate: a token bucket of depth one, so
// consecutive tokens (across all tasks) are at least 1/rate apart. A host
// owner sets it to keep the machine usable for other things.
type limiter struct {
	mu    sync.Mutex
	every time.Duration // minimum spacing; 0 = unlimited
	next  time.Time     // earliest time the next token may go
	now   func() time.Time
}

func newLimiter(tokensPerSec float64, now func() time.Time) *limiter {
	l := &limiter{now: now}
	if tokensPerSec > 0 {
		l.every = time.Duration(float64(time.Second) / tokensPerSec)
	}
	return l
}

// reserve books the next token slot and returns how long the caller must
// wait before emitting it (0 if it may go now).
func (l *limiter) reserve() time.Duration {
	if l.every == 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if l.next.Before(now) {
		l.next = now
	}
	wait := l.next.Sub(now)
	l.next = l.next.Add(l.every)
	return wait
}

// wait blocks until the caller may emit one token, or ctx ends.
func (l *limiter) wait(ctx context.Context) error {
	d := l.reserve()
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// maxHeld bounds the bytes held back waiting for a character to complete;
// a run of broken bytes longer than any UTF-8 sequence is flushed as U+FFFD.
const maxHeld = 16

// utf8Joiner turns engine token texts (which may split a character across
// byte-fallback tokens) into chunk texts that are always valid UTF-8. A token
// after which the text does not end on a character boundary is partial: its
// text is held and arrives with the token that completes the character, so
// every non-partial token ends on a boundary (a clean failover point).
type utf8Joiner struct {
	held []byte
}

// add returns the text to send for a token with text piece and whether the
// token is partial (then text is "").
func (j *utf8Joiner) add(piece string) (text string, partial bool) {
	j.held = append(j.held, piece...)
	if incompleteTail(j.held) && len(j.held) <= maxHeld {
		return "", true
	}
	text = strings.ToValidUTF8(string(j.held), "\uFFFD")
	j.held = j.held[:0]
	return text, false
}

// incompleteTail reports whether b ends with the beginning of a UTF-8
// sequence that more bytes could complete.
func incompleteTail(b []byte) bool {
	// Look back at most 3 bytes for a lead byte.
	for i := len(b) - 1; i >= 0 && i >= len(b)-3; i-- {
		c := b[i]
		if c < 0x80 {
			return false // ASCII: complete
		}
		if c >= 0xC0 { // lead byte
			need := 0
			switch {
			case c >= 0xF0 && c <= 0xF4:
				need = 4
			case c >= 0xE0:
				need = 3
			case c >= 0xC2 && c < 0xE0:
				need = 2
			default:
				return false // invalid lead: more bytes cannot help
			}
			have := len(b) - i
			return have < need && !utf8.FullRune(b[i:])
		}
		// continuation byte: keep looking back
	}
	return false
}
