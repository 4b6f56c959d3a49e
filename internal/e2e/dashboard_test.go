package e2e

import (
	"context"
	"fmt"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/testenv"
)

// dashPrices makes the tiny model expensive enough that one request's
// figures show on the dashboard (it rounds to 1/10,000 of the currency).
const dashPrices = `{"currency": "USD", "versions": [{"version": 1, "published": "2026-01-01T00:00:00Z",
  "effective": "2026-01-01T00:00:00Z", "models": {"stories260K": {"input_per_million": 2000000000, "output_per_million": 4000000000}}}]}`

// chromium finds a headless-capable Chromium, or skips the test (fails it
// under CI=true, where the browser must be installed).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no chromium on PATH: CI must install it (apt-get install chromium)")
	}
	t.Skip("no chromium on PATH: install it (apt-get install chromium) to run the dashboard test in a real browser")
	return ""
}

// dollars formats micro-units as the dashboard does (en-US, USD, 2 to 4
// decimals).
func dollars(micros int64) string {
	s := fmt.Sprintf("%.4f", float64(micros)/1e6)
	for strings.HasSuffix(s, "0") && len(s)-strings.IndexByte(s, '.') > 3 {
		s = s[:len(s)-1]
	}
	return "$" + s
}

// textOf returns the text of the element with id in dom ("" if absent).
func textOf(dom, id string) string {
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `"[^>]*>([^<]*)<`).FindStringSubmatch(dom)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// TestDashboardInBrowser: a real orchestrator and host serve a request; the
// dashboard, loaded in headless Chromium with the admin token in the URL
// fragment, renders the host, its region and the ledger's figures from
// /admin/v1/overview.
func TestDashboardInBrowser(t *testing.T) {
	browser := chromium(t)
	t.Parallel()
	prices := filepath.Join(t.TempDir(), "prices.json")
	if err := os.WriteFile(prices, []byte(dashPrices), 0o600); err != nil {
		t.Fatal(err)
	}
	o := testenv.StartOrchestrator(t, testenv.OrchestratorOptions{Args: []string{"--prices", prices, "--no-safety", "--no-privacy"}})
	key := o.CreateKey(t, "dash")
	h := o.StartHost(t, testenv.HostOptions{Name: "alice-pc", Owner: "alice", Region: "eu-west"})
	o.WaitHosts(t, key, model, 1)
	r := complete(ctxTimeout(t, 60*time.Second), t, nil, o.API, "/v1/completions", key,
		map[string]any{"model": model, "prompt": "Once upon a time", "max_tokens": 16, "temperature": 0}, nil)
	if r.Status != 200 {
		t.Fatalf("request: %d %s", r.Status, r.Body)
	}
	var sum summary
	testenv.Eventually(t, 30*time.Second, "request billed", func() error {
		if code := o.Do(t, "GET", "/admin/v1/ledger/summary", o.AdminToken, nil, &sum); code != 200 || sum.Requests != 1 {
			return fmt.Errorf("HTTP %d, %+v", code, sum)
		}
		return nil
	})

	var dom string
	testenv.Eventually(t, 60*time.Second, "dashboard rendered", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
			"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--user-data-dir="+t.TempDir(), "--virtual-time-budget=8000", "--dump-dom",
			o.API+"/dashboard/#token="+o.AdminToken)
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("chromium: %v", err)
		}
		dom = string(out)
		if !strings.Contains(dom, `data-loaded="true"`) {
			return fmt.Errorf("overview not rendered; status %q", textOf(dom, "status"))
		}
		return nil
	})
	if strings.Contains(dom, o.AdminToken) {
		t.Error("the admin token is left in the page")
	}
	for _, want := range []string{
		"alice-pc",           // the host's name
		"eu-west — 1 online", // its region, online
		h.Creds.HostID,       // in the payouts table
		"stories260K",        // the model it serves
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
	for id, want := range map[string]string{
		"c-hosts":    "1 / 1",
		"l-requests": "1",
		"l-revenue":  dollars(sum.Revenue),
		"l-hosts":    dollars(sum.Hosts),
		"l-platform": dollars(sum.Platform),
		"c-fallback": "0%",
	} {
		if got := textOf(dom, id); got != want {
			t.Errorf("#%s = %q, want %q", id, got, want)
		}
	}
	if t.Failed() {
		t.Logf("rendered DOM:\n%s", dom)
	}
}
