package llama

import (
	"github.com/peerllm/peerllm/internal/engine"
	"github.com/peerllm/peerllm/internal/engine/stopseq"
)

// stopper binds a stopseq.Stopper to one generation's emit function.
type stopper struct {
	s       *stopseq.Stopper
	emit    func(engine.Token) error
	stopped bool
}

func newStopper(stops []string, contText string, emit func(engine.Token) error) *stopper {
	return &stopper{s: stopseq.New(stops, contText), emit: emit}
}

// add takes the next token; it reports whether a stop sequence completed.
func (s *stopper) add(t engine.Token) (bool, error) {
	_, stopped, err := s.s.Add(t, s.emit)
	s.stopped = s.stopped || stopped
	return stopped, err
}

// flush emits what is withheld (the generation ended without a stop).
func (s *stopper) flush() error {
	_, err := s.s.Flush(s.emit)
	return err
}
