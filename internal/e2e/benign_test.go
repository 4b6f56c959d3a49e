package e2e

import (
	"sync"
	"testing"
	"time"
)

// TestOrdinaryStoriesFlowThroughTheScreens: with the safety and privacy
// stages on (the defaults), the tiny model's own children's stories reach
// the consumer whole. An output screen that cuts harmless text would make
// the product useless, so this holds the screen's false positives on real
// model output near zero.
func TestOrdinaryStoriesFlowThroughTheScreens(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2, 0)
	prompts := []string{"Once upon a time", "One day, a little dog", "The sun was shining and", "Tom and his friend", "There was a big tree"}
	const perPrompt = 8
	var mu sync.Mutex
	var filtered, total int
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2) // at most one request per host: this test is about the screens, not capacity
	for i, p := range prompts {
		for seed := 0; seed < perPrompt; seed++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				body := map[string]any{"model": model, "prompt": p, "max_tokens": 120, "temperature": 0.8,
					"seed": 1000*i + seed + 1, "redundancy": "off"}
				r := complete(ctxTimeout(t, time.Minute), t, nil, c.o.API, "/v1/completions", c.key, body, nil)
				if r.Status != 200 {
					t.Errorf("status %d: %s", r.Status, r.Body)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				total++
				if r.Finish == "content_filter" {
					filtered++
				}
			}()
		}
	}
	wg.Wait()
	t.Logf("%d of %d ordinary stories ended by the output screen", filtered, total)
	if filtered*20 > total { // more than 5%
		t.Fatalf("%d of %d ordinary stories were cut by the output screen", filtered, total)
	}
}
