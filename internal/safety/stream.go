package safety

import "strings"

// StreamOptions configures the output screen. Zero fields take the defaults.
type StreamOptions struct {
	// MaxWindow is the longest window in bytes: a window ends at a sentence
	// end (. ! ? or a newline, followed by a space or newline) or, failing
	// one, at the last space before MaxWindow bytes. Default 400.
	MaxWindow int
}

// Stream screens a streamed answer in windows of about a sentence. Each
// complete window is classified together with the window before it (so harm
// split across a window boundary is still seen) and released only if safe;
// the incomplete window is held back, so at most one window is ever held.
// A Stream is not safe for concurrent use; one goroutine owns it.
type Stream struct {
	c       *Classifier
	max     int
	pending []byte // the held-back, not yet screened window
	scanned int    // bytes of pending already searched for a window end
	prev    string // the last released window, context for the next
	stopped *Verdict
	closed  bool
}

// NewStream returns an output screen using c's policy.
func (c *Classifier) NewStream(opts StreamOptions) *Stream {
	if opts.MaxWindow <= 0 {
		opts.MaxWindow = 400
	}
	return &Stream{c: c, max: opts.MaxWindow}
}

// Write adds the next piece of the answer (any split: tokens, bytes, even
// inside a UTF-8 sequence). It returns the text that may now be delivered
// and, when at least one window was screened, the last verdict. When v is
// non-nil and v.Flagged, the stream must stop: release holds only the safe
// text before the unsafe window, which is never delivered, and every later
// Write or Close returns the same verdict and no text.
func (s *Stream) Write(text string) (release string, v *Verdict) {
	if s.stopped != nil {
		return "", s.stopped
	}
	if s.closed {
		return "", nil
	}
	s.pending = append(s.pending, text...)
	var out strings.Builder
	for {
		end := s.windowEnd()
		if end < 0 {
			break
		}
		w := string(s.pending[:end])
		vd := s.judge(w)
		v = &vd
		if vd.Flagged {
			s.stopped = v
			s.pending = nil
			return out.String(), v
		}
		out.WriteString(w)
		s.prev = w
		s.pending = append(s.pending[:0], s.pending[end:]...)
		s.scanned = 0
	}
	return out.String(), v
}

// Close screens and releases the held-back remainder. After Close the stream
// accepts no more text.
func (s *Stream) Close() (release string, v *Verdict) {
	if s.stopped != nil {
		return "", s.stopped
	}
	if s.closed {
		return "", nil
	}
	s.closed = true
	if len(s.pending) == 0 {
		return "", nil
	}
	w := string(s.pending)
	s.pending = nil
	vd := s.judge(w)
	if vd.Flagged {
		s.stopped = &vd
		return "", &vd
	}
	return w, &vd
}

// judge screens window w with the previous window as context, and alone:
// context helps a sentence that continues the last one, but harmless
// context (a story's opening) must not dilute a harmful sentence.
func (s *Stream) judge(w string) Verdict {
	vd := s.c.Classify(s.prev + w)
	if vd.Flagged || s.prev == "" || len(w) < minWindow {
		// A fragment shorter than a window (the answer's last words) is
		// judged only with its context: alone it says too little.
		return vd
	}
	return s.c.Classify(w)
}

// minWindow is the fewest bytes a window has before a sentence end may close
// it (the maximum size and the end of the answer close it anyway).
const minWindow = 24

// Held returns how many bytes are held back (for metrics and tests).
func (s *Stream) Held() int { return len(s.pending) }

// windowEnd returns the length of the first complete window in pending, or
// -1 if there is none yet.
func (s *Stream) windowEnd() int {
	p := s.pending
	// A sentence end or newline before minWindow bytes does not end the window: a
	// sentence of a word or two ("Fine.", "Nice!") is judged together with
	// the next one rather than alone.
	for i := max(s.scanned, minWindow-2); i < len(p); i++ {
		switch p[i] {
		case '\n':
			return i + 1
		case '.', '!', '?':
			// A sentence end needs the next byte to be sure ("3.14", "e.g.").
			if i+1 < len(p) && (p[i+1] == ' ' || p[i+1] == '\n') {
				return i + 2
			}
			if i+1 == len(p) {
				s.scanned = i
				return s.cutLong()
			}
		}
	}
	s.scanned = len(p)
	return s.cutLong()
}

// cutLong ends a window that has no sentence end once it reaches the
// maximum size, at the last space if there is one.
func (s *Stream) cutLong() int {
	if len(s.pending) < s.max {
		return -1
	}
	for i := s.max - 1; i > s.max/2; i-- {
		if s.pending[i] == ' ' {
			return i + 1
		}
	}
	// No space: cut at a UTF-8 boundary at or before max.
	i := s.max
	for i > 0 && i < len(s.pending) && s.pending[i]&0xC0 == 0x80 {
		i--
	}
	if i == 0 {
		i = s.max
	}
	return i
}
