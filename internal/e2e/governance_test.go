package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/testenv"
)

// seatsView is GET /admin/v1/seats.
type seatsView struct {
	Regions []struct {
		Region                 string
		Seats, Active, Waiting int
	} `json:"regions"`
	Seats []struct {
		HostID   string `json:"host_id"`
		State    string `json:"state"`
		Position int    `json:"position"`
	} `json:"seats"`
}

func (s seatsView) of(id string) (state string, pos int) {
	for _, x := range s.Seats {
		if x.HostID == id {
			return x.State, x.Position
		}
	}
	return "", 0
}

// waitSeat waits until host id holds state (and, when waiting, position pos).
func waitSeat(t *testing.T, o *testenv.Orchestrator, id, state string, pos int) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, fmt.Sprintf("host %s %s %d", id, state, pos), func() error {
		var v seatsView
		if code := o.Do(t, "GET", "/admin/v1/seats?region=eu-west", o.AdminToken, nil, &v); code != 200 {
			return fmt.Errorf("HTTP %d", code)
		}
		if st, p := v.of(id); st != state || (state == "waiting" && p != pos) {
			return fmt.Errorf("seat %s %d", st, p)
		}
		return nil
	})
}

// TestSeatWaitlist: with one seat in a region, later hosts wait on the
// waitlist (their Hello is refused with their position, and they keep
// retrying) and are admitted in the order they joined as the seat opens.
func TestSeatWaitlist(t *testing.T) {
	t.Parallel()
	o := testenv.StartOrchestrator(t, testenv.OrchestratorOptions{Args: []string{"--seats-min", "1", "--governance-every", "200ms"}})
	key := o.CreateKey(t, "seats")
	a := o.StartHost(t, testenv.HostOptions{Name: "a", Region: "eu-west"})
	o.WaitHosts(t, key, model, 1)
	waitSeat(t, o, a.Creds.HostID, "active", 0)

	b := o.StartHost(t, testenv.HostOptions{Name: "b", Region: "eu-west"})
	waitSeat(t, o, b.Creds.HostID, "waiting", 1)
	c := o.StartHost(t, testenv.HostOptions{Name: "c", Region: "eu-west"})
	waitSeat(t, o, c.Creds.HostID, "waiting", 2)
	testenv.Eventually(t, 30*time.Second, "b and c told their place and retrying", func() error {
		for _, x := range []struct {
			h   *testenv.Host
			msg string
		}{{b, "waitlisted: position 1 in region eu-west"}, {c, "waitlisted: position 2 in region eu-west"}} {
			if n := strings.Count(x.h.Logs(), x.msg); n < 2 {
				return fmt.Errorf("%s: %q seen %d times", x.h.Name, x.msg, n)
			}
		}
		return nil
	})
	if n := o.ModelHosts(t, key, model); n != 1 {
		t.Fatalf("%d hosts serve while one seat is open", n)
	}

	// The seat opens (the operator removes a): b, first in line, takes it
	// at its next Hello; c moves up to first place.
	if code := o.Do(t, "DELETE", "/admin/v1/hosts/"+a.Creds.HostID, o.AdminToken, nil, nil); code != 200 {
		t.Fatalf("remove a: HTTP %d", code)
	}
	waitSeat(t, o, b.Creds.HostID, "active", 0)
	waitSeat(t, o, c.Creds.HostID, "waiting", 1)
	testenv.Eventually(t, 60*time.Second, "b serves", func() error {
		if !strings.Contains(b.Logs(), "hello acknowledged") {
			return fmt.Errorf("b not acknowledged yet")
		}
		return nil
	})
	r := complete(ctxTimeout(t, 60*time.Second), t, nil, o.API, "/v1/completions", key,
		map[string]any{"model": model, "prompt": "Once upon a time", "max_tokens": 8, "temperature": 0}, nil)
	if r.Status != 200 || r.Completion == 0 {
		t.Fatalf("request after b was seated: %d %s", r.Status, r.Body)
	}
	if strings.Contains(c.Logs(), "hello acknowledged") {
		t.Fatal("c was admitted while b held the only seat")
	}
}

// post sends one completion and returns the status, Retry-After and body.
func post(ctx context.Context, api, key string, body map[string]any) (int, string, string, error) {
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, "POST", api+"/v1/completions", bytes.NewReader(b))
	if err != nil {
		return 0, "", "", err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), string(raw), err
}

// apiMetric reads one series of the orchestrator's /metrics.
func apiMetric(t *testing.T, o *testenv.Orchestrator, name string) float64 {
	t.Helper()
	v, err := metricSum(o.API+"/metrics", name)
	if err != nil {
		t.Fatalf("orchestrator metrics: %v", err)
	}
	return v
}

// inFlight waits until n requests run on the dispatcher.
func inFlight(t *testing.T, o *testenv.Orchestrator, n int) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, fmt.Sprintf("%d requests in flight", n), func() error {
		if v := apiMetric(t, o, "peerllm_dispatch_inflight_requests"); int(v) != n {
			return fmt.Errorf("%v in flight", v)
		}
		return nil
	})
}

// TestFallbackAndCapacityQueue: an operator-run fallback host takes work
// only when the community host is at capacity and gives it back as capacity
// returns; when every host is at capacity a request waits in line and is
// served, and one that cannot start within the bound gets 429 with an
// honest Retry-After — never a hang, never a silent drop.
func TestFallbackAndCapacityQueue(t *testing.T) {
	t.Parallel()
	o := testenv.StartOrchestrator(t, testenv.OrchestratorOptions{Args: []string{"--queue-bound", "20s", "--no-safety", "--no-privacy"}})
	key := o.CreateKey(t, "fallback")
	o.StartHost(t, testenv.HostOptions{Name: "community", Region: "eu-west", Capacity: 1, Throttle: 40})
	creds := o.AddHost(t, "operator-fb", "operator", "eu-west")
	if code := o.Do(t, "PUT", "/admin/v1/hosts/"+creds.HostID+"/fallback", o.AdminToken, map[string]bool{"fallback": true}, nil); code != 200 {
		t.Fatalf("mark fallback: HTTP %d", code)
	}
	o.RunHost(t, creds, testenv.HostOptions{Name: "operator-fb", Capacity: 1, Throttle: 40})
	o.WaitHosts(t, key, model, 2)
	ctx := ctxTimeout(t, 120*time.Second)
	req := func(tokens int) map[string]any {
		return map[string]any{"model": model, "prompt": "Once upon a time", "max_tokens": tokens, "temperature": 0}
	}
	fbTokens := func() float64 { return apiMetric(t, o, "peerllm_fallback_tokens_total") }

	t.Run("community host free: no fallback", func(t *testing.T) {
		if code, _, body, err := post(ctx, o.API, key, req(8)); err != nil || code != 200 {
			t.Fatalf("%d %v %s", code, err, body)
		}
		if v := fbTokens(); v != 0 {
			t.Fatalf("fallback generated %v tokens with the community host free", v)
		}
	})

	var wg sync.WaitGroup
	results := make(chan string, 8)
	send := func(name string, tokens int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, ra, body, err := post(ctx, o.API, key, req(tokens))
			results <- fmt.Sprintf("%s %d %s %v %.80s", name, code, ra, err, body)
		}()
	}
	t.Run("community host full: fallback serves, then a request waits in line", func(t *testing.T) {
		send("long1", 120) // ~3 s on the community host
		inFlight(t, o, 1)
		send("long2", 120) // the community host is full: the fallback host takes it
		inFlight(t, o, 2)
		send("queued", 8) // both full: waits in line, then runs
		wg.Wait()
		close(results)
		for r := range results {
			if !strings.Contains(r, " 200 ") {
				t.Errorf("%s: want 200", r)
			}
		}
		if v := apiMetric(t, o, "peerllm_fallback_requests_total"); v < 1 {
			t.Fatalf("fallback requests %v, want at least 1", v)
		}
		if v := fbTokens(); v < 120 {
			t.Fatalf("fallback generated %v tokens, want at least 120", v)
		}
		if v := apiMetric(t, o, "peerllm_fallback_token_share"); v <= 0 || v >= 1 {
			t.Fatalf("fallback share %v", v)
		}
	})

	t.Run("capacity back: the community host gets the work", func(t *testing.T) {
		before := fbTokens()
		for i := 0; i < 3; i++ {
			if code, _, body, err := post(ctx, o.API, key, req(8)); err != nil || code != 200 {
				t.Fatalf("%d %v %s", code, err, body)
			}
		}
		if v := fbTokens(); v != before {
			t.Fatalf("fallback tokens went from %v to %v with the community host free", before, v)
		}
	})

	t.Run("a running request moves back to the community host at a segment boundary", func(t *testing.T) {
		before := fbTokens()
		short := make(chan error, 1)
		go func() {
			code, _, body, err := post(ctx, o.API, key, req(40)) // ~1 s on the community host
			if err == nil && code != 200 {
				err = fmt.Errorf("HTTP %d %s", code, body)
			}
			short <- err
		}()
		inFlight(t, o, 1)
		// Starts on the fallback host (the community host is busy); its
		// segments grow 16, 32, 64, 88 tokens (~0.4, 0.8, 1.6, 2.2 s at
		// 40 tokens/s), so a boundary comes after the short one ends.
		code, _, body, err := post(ctx, o.API, key, req(200))
		if err != nil || code != 200 {
			t.Fatalf("%d %v %s", code, err, body)
		}
		if err := <-short; err != nil {
			t.Fatal(err)
		}
		got := fbTokens() - before
		if got == 0 || got >= 200 {
			t.Fatalf("the fallback host generated %v of the 200 tokens; want some, and the rest back on the community host", got)
		}
	})

	t.Run("overview shows the share", func(t *testing.T) {
		var ov struct {
			Hosts []struct {
				ID       string `json:"id"`
				Fallback bool   `json:"fallback"`
			} `json:"hosts"`
			Traffic struct {
				Share  float64 `json:"fallback_token_share"`
				Queues []struct {
					Model  string `json:"model"`
					Queued int64  `json:"queued_total"`
				} `json:"queues"`
			} `json:"traffic"`
		}
		if code := o.Do(t, "GET", "/admin/v1/overview", o.AdminToken, nil, &ov); code != 200 {
			t.Fatalf("overview HTTP %d", code)
		}
		fb := 0
		for _, h := range ov.Hosts {
			if h.Fallback {
				fb++
				if h.ID != creds.HostID {
					t.Errorf("host %s shown as fallback", h.ID)
				}
			}
		}
		if fb != 1 || ov.Traffic.Share <= 0 || ov.Traffic.Share >= 1 {
			t.Fatalf("overview: %d fallback hosts, share %v", fb, ov.Traffic.Share)
		}
		if len(ov.Traffic.Queues) != 1 || ov.Traffic.Queues[0].Model != model || ov.Traffic.Queues[0].Queued < 1 {
			t.Fatalf("queues %+v: the third request did not wait in line", ov.Traffic.Queues)
		}
	})
}

// TestCapacityRefusal: past the queue bound a request gets 429 with a
// Retry-After (whole seconds, rounded up from the estimate), at once when
// the estimate is already beyond the bound.
func TestCapacityRefusal(t *testing.T) {
	t.Parallel()
	o := testenv.StartOrchestrator(t, testenv.OrchestratorOptions{Args: []string{"--queue-bound", "1s", "--no-safety", "--no-privacy"}})
	key := o.CreateKey(t, "bound")
	o.StartHost(t, testenv.HostOptions{Name: "only", Region: "eu-west", Capacity: 1, Throttle: 20})
	o.WaitHosts(t, key, model, 1)
	ctx := ctxTimeout(t, 120*time.Second)
	long, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		post(long, o.API, key, map[string]any{"model": model, "prompt": "Once", "max_tokens": 400, "temperature": 0})
	}()
	inFlight(t, o, 1)
	for i := 0; i < 2; i++ {
		code, ra, body, err := post(ctx, o.API, key, map[string]any{"model": model, "prompt": "Once", "max_tokens": 4})
		if err != nil || code != 429 || !strings.Contains(body, "overloaded") {
			t.Fatalf("while the only host is busy: %d %v %s", code, err, body)
		}
		if s, err := strconv.Atoi(ra); err != nil || s < 1 {
			t.Fatalf("Retry-After %q", ra)
		}
	}
	if v := apiMetric(t, o, "peerllm_capacity_refused_total"); v < 2 {
		t.Fatalf("peerllm_capacity_refused_total = %v, want 2", v)
	}
	stop()
	<-done
	testenv.Eventually(t, 30*time.Second, "served once the host is free", func() error {
		code, _, body, err := post(ctx, o.API, key, map[string]any{"model": model, "prompt": "Once", "max_tokens": 4})
		if err != nil || code != 200 {
			return fmt.Errorf("%d %v %s", code, err, body)
		}
		return nil
	})
}

// TestKeyPrefersEnterprise: a key that asks for enterprise hosts gets them
// preferred (`peerllm admin keys tier ID --prefer-tier enterprise`).
func TestKeyPrefersEnterprise(t *testing.T) {
	t.Parallel()
	o := testenv.StartOrchestrator(t, testenv.OrchestratorOptions{Args: []string{"--no-safety", "--no-privacy"}})
	var k struct {
		Key struct {
			ID string `json:"id"`
		} `json:"key"`
		Secret string `json:"secret"`
	}
	if code := o.Do(t, "POST", "/admin/v1/keys", o.AdminToken, map[string]string{"name": "bank"}, &k); code != 201 {
		t.Fatalf("create key: HTTP %d", code)
	}
	if code := o.Do(t, "PUT", "/admin/v1/keys/"+k.Key.ID+"/tier", o.AdminToken, map[string]string{"tier": "gold"}, nil); code != 400 {
		t.Fatalf("unknown tier: HTTP %d, want 400", code)
	}
	if code := o.Do(t, "PUT", "/admin/v1/keys/nope/tier", o.AdminToken, map[string]string{"tier": "enterprise"}, nil); code != 404 {
		t.Fatalf("unknown key: HTTP %d, want 404", code)
	}
	if code := o.Do(t, "PUT", "/admin/v1/keys/"+k.Key.ID+"/tier", o.AdminToken, map[string]string{"tier": "enterprise"}, nil); code != 200 {
		t.Fatalf("set tier: HTTP %d", code)
	}
	std := o.StartHost(t, testenv.HostOptions{Name: "std", Region: "eu-west"})
	var ent struct{ Credentials testenv.Credentials }
	if code := o.Do(t, "POST", "/admin/v1/hosts", o.AdminToken, map[string]string{"name": "ent", "owner": "bigco", "region": "eu-west", "tier": "enterprise"}, &ent); code != 201 {
		t.Fatalf("add enterprise host: HTTP %d", code)
	}
	o.RunHost(t, ent.Credentials, testenv.HostOptions{Name: "ent"})
	o.WaitHosts(t, k.Secret, model, 2)
	ctx := ctxTimeout(t, 60*time.Second)
	for i := 0; i < 4; i++ {
		code, _, body, err := post(ctx, o.API, k.Secret, map[string]any{"model": model, "prompt": "Once upon a time",
			"max_tokens": 8, "temperature": 0, "redundancy": "off"})
		if err != nil || code != 200 {
			t.Fatalf("%d %v %s", code, err, body)
		}
	}
	var ov struct {
		Payouts struct {
			Hosts []struct {
				HostID string `json:"host_id"`
				Tokens int64  `json:"tokens"`
			} `json:"hosts"`
		} `json:"payouts"`
	}
	testenv.Eventually(t, 30*time.Second, "payouts recorded", func() error {
		if code := o.Do(t, "GET", "/admin/v1/overview", o.AdminToken, nil, &ov); code != 200 {
			return fmt.Errorf("HTTP %d", code)
		}
		for _, h := range ov.Payouts.Hosts {
			if h.HostID == std.Creds.HostID {
				t.Fatalf("the standard host earned for %d tokens of an enterprise key", h.Tokens)
			}
			if h.HostID == ent.Credentials.HostID && h.Tokens >= 32 {
				return nil
			}
		}
		return fmt.Errorf("payouts %+v", ov.Payouts.Hosts)
	})
}
