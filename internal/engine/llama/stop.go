package llama

import (
	"strings"

	"github.com/peerllm/peerllm/internal/engine"
)

// stopper withholds tokens whose text might begin a stop sequence and cuts
// the output where one completes. Text before the first new token (the
// decoded continuation) takes part in matching, so a stop sequence split
// across the Continue boundary is found too; it is never emitted again.
type stopper struct {
	stops   []string
	emit    func(engine.Token) error
	buf     string // held continuation tail followed by the pending tokens' text
	tail    int    // bytes of buf that are continuation text
	pending []engine.Token
	stopped bool
}

func newStopper(stops []string, contText string, emit func(engine.Token) error) *stopper {
	s := &stopper{emit: emit}
	for _, x := range stops {
		if x != "" {
			s.stops = append(s.stops, x)
		}
	}
	if len(s.stops) > 0 {
		h := s.hold(contText)
		s.buf = contText[len(contText)-h:]
		s.tail = len(s.buf)
	}
	return s
}

// hold is the length of the longest suffix of text that is a proper prefix
// of a stop sequence.
func (s *stopper) hold(text string) int {
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

// add takes the next token; it reports whether a stop sequence completed.
func (s *stopper) add(t engine.Token) (bool, error) {
	if len(s.stops) == 0 {
		return false, s.emit(t)
	}
	s.pending = append(s.pending, t)
	s.buf += t.Text
	cut := -1
	for _, x := range s.stops {
		from := max(0, s.tail-len(x)+1)
		if i := strings.Index(s.buf[from:], x); i >= 0 && (cut < 0 || from+i < cut) {
			cut = from + i
		}
	}
	if cut >= 0 {
		s.stopped = true
		allowed := cut - s.tail
		for _, p := range s.pending {
			if allowed <= 0 {
				break
			}
			if len(p.Text) > allowed {
				p.Text = p.Text[:allowed]
			}
			allowed -= len(p.Text)
			if err := s.emit(p); err != nil {
				return true, err
			}
		}
		s.pending = nil
		return true, nil
	}
	safe := len(s.buf) - s.hold(s.buf)
	off := s.tail
	n := 0
	for n < len(s.pending) && off+len(s.pending[n].Text) <= safe {
		off += len(s.pending[n].Text)
		if err := s.emit(s.pending[n]); err != nil {
			return false, err
		}
		n++
	}
	if n > 0 {
		s.pending = s.pending[n:]
		s.buf = s.buf[off:]
		s.tail = 0
	}
	return false, nil
}

// flush emits what is withheld (the generation ended without a stop).
func (s *stopper) flush() error {
	for _, p := range s.pending {
		if err := s.emit(p); err != nil {
			return err
		}
	}
	s.pending = nil
	return nil
}
