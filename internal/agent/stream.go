package agent

import (
	"sync"

	"github.com/peerllm/peerllm/internal/fabric"
)

// streamer publishes a task's tokens from its own goroutine, so the engine
// never waits for the link, and the tokens an engine produces while a
// publish is under way go out together in the next chunk: one message for
// the batch instead of one per token. A token is handed over the moment it
// is produced and waits only for the publish in progress, never for a later
// token. With a real model (milliseconds per token) every chunk still holds
// one token; with a fast engine the orchestrator handles far fewer messages.
type streamer struct {
	publish func(*fabric.Chunk) error

	mu      sync.Mutex
	pend    []fabric.ChunkToken
	started bool // the first token was handed over
	closed  bool
	err     error // the first publish error; later tokens are refused with it

	wake chan struct{} // capacity 1: "look at pend"
	done chan struct{} // closed when run returns
}

func newStreamer(publish func(*fabric.Chunk) error) *streamer {
	s := &streamer{publish: publish, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go s.run() // owned by the task: close waits for it
	return s
}

// add queues t for publishing. It returns the link's error once a publish
// has failed, so the engine stops.
func (s *streamer) add(t fabric.ChunkToken) error {
	s.mu.Lock()
	if s.err != nil {
		err := s.err
		s.mu.Unlock()
		return err
	}
	if !s.started {
		// The first token goes out from the engine's goroutine: no publish
		// can be under way yet, and the time to first token pays no
		// hand-off. Later tokens queue behind it.
		s.started = true
		s.mu.Unlock()
		one := [1]fabric.ChunkToken{t}
		if err := s.publish(&fabric.Chunk{Tokens: one[:]}); err != nil {
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
			return err
		}
		return nil
	}
	s.pend = append(s.pend, t)
	s.mu.Unlock()
	s.signal()
	return nil
}

func (s *streamer) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *streamer) run() {
	defer close(s.done)
	var out []fabric.ChunkToken
	for range s.wake {
		s.mu.Lock()
		out, s.pend = s.pend, out[:0]
		closed, failed := s.closed, s.err != nil
		s.mu.Unlock()
		if len(out) > 0 && !failed {
			if err := s.publish(&fabric.Chunk{Tokens: out}); err != nil {
				s.mu.Lock()
				s.err = err
				s.mu.Unlock()
			}
		}
		if closed {
			return
		}
	}
}

// close publishes what is queued, stops the goroutine and returns the first
// publish error.
func (s *streamer) close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.signal()
	<-s.done
	return s.err
}
