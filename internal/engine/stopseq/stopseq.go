// Package stopseq applies stop sequences to a stream of generated tokens
// with the semantics every engine in this project shares. Engines import
// it; nothing else needs to.
package stopseq

import (
	"strings"

	"github.com/peerllm/peerllm/internal/engine"
)

// Stopper holds back tokens whose text might begin a stop sequence and
// cuts the output exactly where one starts (truncating the text of the
// token it starts in), the semantics every engine in this project shares.
// The decoded Continue text takes part in matching (a stop sequence split
// across the Continue boundary is found) but is never emitted. A Stopper is
// used by one generation from one goroutine.
type Stopper struct {
	stops   []string
	buf     string // continuation tail, then the pending tokens' text
	tail    int    // bytes of buf that are continuation text
	pending []engine.Token
}

// New returns a Stopper for stops (empty strings are ignored) after the
// continuation text cont.
func New(stops []string, cont string) *Stopper {
	s := &Stopper{}
	for _, x := range stops {
		if x != "" {
			s.stops = append(s.stops, x)
		}
	}
	if len(s.stops) > 0 {
		h := s.hold(cont)
		s.buf, s.tail = cont[len(cont)-h:], h
	}
	return s
}

// hold is the length of the longest suffix of text that is a proper prefix
// of a stop sequence.
func (s *Stopper) hold(text string) int {
	best := 0
	for _, x := range s.stops {
		for n := min(len(x)-1, len(text)); n > best; n-- {
			if strings.HasSuffix(text, x[:n]) {
				best = n
				break
			}
		}
	}
	return best
}

// Add takes the next token and emits what is safe to emit; it returns how
// many tokens it emitted and whether a stop sequence completed (then the
// generation should end; nothing after the stop is emitted).
func (s *Stopper) Add(t engine.Token, emit func(engine.Token) error) (int, bool, error) {
	if len(s.stops) == 0 {
		return 1, false, emit(t)
	}
	s.pending = append(s.pending, t)
	s.buf += t.Text
	cut := -1
	for _, x := range s.stops {
		if i := strings.Index(s.buf, x); i >= 0 && (cut < 0 || i < cut) {
			cut = i
		}
	}
	if cut >= 0 {
		n, err := s.release(cut, true, emit)
		return n, true, err
	}
	n, err := s.release(len(s.buf)-s.hold(s.buf), false, emit)
	return n, false, err
}

// release emits the pending tokens whose text lies within the first upto
// bytes of buf; with truncate, the token straddling upto is emitted cut.
func (s *Stopper) release(upto int, truncate bool, emit func(engine.Token) error) (int, error) {
	pos, n := s.tail, 0
	if upto < s.tail {
		s.buf, s.tail = s.buf[upto:], s.tail-upto
		return 0, nil
	}
	for len(s.pending) > 0 {
		p := s.pending[0]
		if pos+len(p.Text) > upto {
			if !truncate || pos >= upto {
				break
			}
			p.Text = p.Text[:upto-pos]
		}
		if err := emit(p); err != nil {
			return n, err
		}
		n++
		pos += len(s.pending[0].Text)
		s.pending = s.pending[1:]
	}
	s.buf, s.tail = s.buf[min(pos, len(s.buf)):], 0
	return n, nil
}

// Flush emits the tokens still held when generation ends without a stop.
func (s *Stopper) Flush(emit func(engine.Token) error) (int, error) {
	n := 0
	for _, p := range s.pending {
		if err := emit(p); err != nil {
			return n, err
		}
		n++
	}
	s.pending = nil
	return n, nil
}
