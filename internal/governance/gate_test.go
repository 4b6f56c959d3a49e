package governance_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/governance"
	"github.com/peerllm/peerllm/internal/testenv"
)

// slots is a model's hosts with n task slots: run takes one or reports
// ErrAtCapacity, as the dispatcher does, and holds it until released.
type slots struct {
	mu   sync.Mutex
	free int
}

func (s *slots) take() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.free == 0 {
		return false
	}
	s.free--
	return true
}

func (s *slots) give() { s.mu.Lock(); s.free++; s.mu.Unlock() }

func (s *slots) isFree(string) bool { s.mu.Lock(); defer s.mu.Unlock(); return s.free > 0 }

// request runs one request through g on s, holding its slot until release
// is closed, and reports its start on started.
func request(ctx context.Context, g *governance.Gate, s *slots, id int, started chan<- int, release <-chan struct{}) error {
	return g.Run(ctx, "m", func() (bool, error) {
		if !s.take() {
			return false, fmt.Errorf("dispatch: %w", governance.ErrAtCapacity)
		}
		defer s.give()
		started <- id
		<-release
		return true, nil
	})
}

func TestGateQueuesInOrder(t *testing.T) {
	s := &slots{free: 1}
	g := governance.NewGate(governance.GateConfig{Bound: time.Minute, Free: s.isFree})
	started := make(chan int, 10)
	releases := make([]chan struct{}, 4)
	errs := make(chan error, 4)
	for i := range releases {
		releases[i] = make(chan struct{})
	}
	go func() { errs <- request(context.Background(), g, s, 0, started, releases[0]) }()
	if id := <-started; id != 0 {
		t.Fatalf("first started %d", id)
	}
	// Requests 1..3 arrive one after another while the slot is taken.
	for i := 1; i < 4; i++ {
		go func() { errs <- request(context.Background(), g, s, i, started, releases[i]) }()
		testenv.Eventually(t, 10*time.Second, "request queued", func() error {
			if st := g.Stats(); len(st) != 1 || st[0].Waiting != i {
				return fmt.Errorf("stats %+v", st)
			}
			return nil
		})
	}
	// Each release lets exactly the next in line start, in arrival order.
	for i := 0; i < 4; i++ {
		close(releases[i])
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		if i < 3 {
			if id := <-started; id != i+1 {
				t.Fatalf("after %d ended, %d started; want %d", i, id, i+1)
			}
		}
	}
	if st := g.Stats(); st[0].Waiting != 0 || st[0].Running != 0 || st[0].Queued != 3 || st[0].ServiceMs <= 0 {
		t.Fatalf("stats after: %+v", st)
	}
}

func TestGateRefusesPastTheBound(t *testing.T) {
	tests := []struct {
		name  string
		bound time.Duration
		hold  time.Duration // how long a request holds its slot: the measured service time
	}{
		{"wait runs out: 429 with the estimate", 50 * time.Millisecond, 0},
		{"estimate beyond the bound: refused at once", 100 * time.Millisecond, 300 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &slots{free: 1}
			g := governance.NewGate(governance.GateConfig{Bound: tt.bound, Free: s.isFree})
			started := make(chan int, 10)
			// One request first, so the gate has measured a service time.
			rel := make(chan struct{})
			go func() { <-started; time.Sleep(tt.hold); close(rel) }()
			if err := request(context.Background(), g, s, 0, started, rel); err != nil {
				t.Fatal(err)
			}
			hold := make(chan struct{})
			defer close(hold)
			go request(context.Background(), g, s, 1, started, hold)
			<-started
			err := request(context.Background(), g, s, 2, started, nil)
			var busy *governance.Busy
			if !errors.As(err, &busy) {
				t.Fatalf("err = %v, want *Busy", err)
			}
			if busy.Position != 1 || busy.RetryAfterSeconds() < 1 || busy.RetryAfter <= 0 {
				t.Fatalf("busy = %+v", busy)
			}
			if tt.hold > 0 && busy.RetryAfter < tt.hold {
				t.Fatalf("estimate %v below the measured service time %v", busy.RetryAfter, tt.hold)
			}
			if st := g.Stats(); st[0].Waiting != 0 || st[0].Refused != 1 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestGateConsumerLeavesTheQueue(t *testing.T) {
	s := &slots{free: 1}
	g := governance.NewGate(governance.GateConfig{Bound: time.Minute, Free: s.isFree})
	started := make(chan int, 10)
	hold := make(chan struct{})
	defer close(hold)
	go request(context.Background(), g, s, 1, started, hold)
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- request(ctx, g, s, 2, started, nil) }()
	testenv.Eventually(t, 10*time.Second, "queued", func() error {
		if st := g.Stats(); st[0].Waiting != 1 {
			return fmt.Errorf("stats %+v", st)
		}
		return nil
	})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if st := g.Stats(); st[0].Waiting != 0 {
		t.Fatalf("still queued: %+v", st)
	}
}

func TestGatePassesOtherErrors(t *testing.T) {
	g := governance.NewGate(governance.GateConfig{})
	want := errors.New("no host")
	if err := g.Run(context.Background(), "m", func() (bool, error) { return false, want }); !errors.Is(err, want) {
		t.Fatalf("err = %v", err)
	}
}
