package e2e

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/testenv"
)

// testPrices makes every charge an exact integer: 1 micro-unit per prompt
// token and 3 per completion token of the tiny model.
const testPrices = `{"currency":"USD","versions":[{"version":1,"published":"2026-01-01T00:00:00Z","effective":"2026-01-01T00:00:00Z",
 "models":{"stories260K":{"input_per_million":1000000,"output_per_million":3000000}}}]}`

func pricesFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "prices.json")
	if err := os.WriteFile(p, []byte(testPrices), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type summary struct {
	Revenue  int64 `json:"revenue_micros"`
	Hosts    int64 `json:"hosts_micros"`
	Platform int64 `json:"platform_micros"`
	Requests int64 `json:"requests"`
	Held     int64 `json:"held_micros"`
}

type payout struct {
	HostID   string `json:"host_id"`
	Micros   int64  `json:"earned_micros"`
	Tokens   int64  `json:"tokens"`
	Requests int64  `json:"requests"`
}

type usageView struct {
	Requests         int64 `json:"requests"`
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	Spent            int64 `json:"spent_micros"`
	Held             int64 `json:"held_micros"`
}

func ledgerSummary(t *testing.T, o *testenv.Orchestrator) summary {
	t.Helper()
	var s summary
	if code := o.Do(t, "GET", "/admin/v1/ledger/summary", o.AdminToken, nil, &s); code != 200 {
		t.Fatalf("ledger summary: HTTP %d", code)
	}
	return s
}

func usageOf(t *testing.T, o *testenv.Orchestrator, key string) (account, perKey usageView) {
	t.Helper()
	var u struct {
		Account usageView `json:"account"`
		Key     usageView `json:"key"`
	}
	if code := o.Do(t, "GET", "/v1/usage", key, nil, &u); code != 200 {
		t.Fatalf("usage: HTTP %d", code)
	}
	return u.Account, u.Key
}

// runCLI runs `peerllm args...` to the end and returns its output and exit error.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	p := testenv.StartProc(t, args[0], args...)
	select {
	case <-p.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("%v hangs", args)
	}
	return p.Logs(), p.Err()
}

func adminCLI(t *testing.T, o *testenv.Orchestrator, args ...string) string {
	t.Helper()
	out, err := runCLI(t, append([]string{"admin", "--server", o.API, "--admin-token", o.AdminToken}, args...)...)
	if err != nil {
		t.Fatalf("admin %v: %v\n%s", args, err, out)
	}
	return out
}

// keyFor creates an API key billed to account and returns its id and secret.
func keyFor(t *testing.T, o *testenv.Orchestrator, name, account string) (string, string) {
	t.Helper()
	var out struct {
		Key    struct{ ID string }
		Secret string
	}
	if code := o.Do(t, "POST", "/admin/v1/keys", o.AdminToken, map[string]string{"name": name, "account": account}, &out); code != http.StatusCreated {
		t.Fatalf("create key: HTTP %d", code)
	}
	return out.Key.ID, out.Secret
}

// split is the policy's rule, computed independently: 95% floored, shared
// pro rata to tokens, floors first, leftovers to the largest remainders,
// ties to the smaller host id.
func split(charged int64, tokens map[string]int64) (map[string]int64, int64) {
	pool := charged * 95 / 100
	var total int64
	ids := make([]string, 0, len(tokens))
	for id, n := range tokens {
		total += n
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := map[string]int64{}
	rem := map[string]int64{}
	var given int64
	for _, id := range ids {
		out[id] = pool * tokens[id] / total
		rem[id] = pool * tokens[id] % total
		given += out[id]
	}
	sort.SliceStable(ids, func(i, j int) bool { return rem[ids[i]] > rem[ids[j]] })
	for i := 0; given < pool; i++ {
		out[ids[i%len(ids)]]++
		given++
	}
	return out, charged - pool
}

// TestMoneyChargeAndSplit: a request is charged exactly per the price list;
// the hosts' 95% lands on the hosts that generated tokens (main and backup
// both) pro rata; the consumer sees it in /v1/usage, the hosts in `host
// status`, the operator in `admin payouts`, and `admin ledger check` passes.
func TestMoneyChargeAndSplit(t *testing.T) {
	o := testenv.StartOrchestrator(t, testenv.OrchestratorOptions{Args: []string{"--prices", pricesFile(t), "--mode", "parallel"}})
	key := o.CreateKey(t, "school")
	var hosts []*testenv.Host
	for i, region := range []string{"eu-west", "us-east"} {
		// Throttled like real hosts, so that the backup streams alongside
		// the main instead of being cancelled before its first token.
		hosts = append(hosts, o.StartHost(t, testenv.HostOptions{Name: fmt.Sprintf("m%d", i), Owner: fmt.Sprintf("owner%d", i), Region: region, Throttle: 100}))
	}
	o.WaitHosts(t, key, model, 2)

	var pricing struct {
		Currency string `json:"currency"`
		InForce  int    `json:"in_force"`
	}
	if code := o.Do(t, "GET", "/v1/pricing", "", nil, &pricing); code != 200 || pricing.Currency != "USD" || pricing.InForce != 1 {
		t.Fatalf("pricing: HTTP %d %+v", code, pricing)
	}

	g := goldenCases(t)[0]
	period := time.Now().UTC().Format("2006-01")
	payouts := func() map[string]payout {
		var pays struct {
			Payouts []payout `json:"payouts"`
		}
		if code := o.Do(t, "GET", "/admin/v1/payouts?period="+period, o.AdminToken, nil, &pays); code != 200 {
			t.Fatalf("payouts: HTTP %d", code)
		}
		out := map[string]payout{}
		for _, p := range pays.Payouts {
			out[p.HostID] = p
		}
		return out
	}
	var prompt, completion, paid int64
	tokens := map[string]int64{}
	last := map[string]payout{}
	for i := 1; i <= 2; i++ {
		r := complete(ctxTimeout(t, time.Minute), t, nil, o.API, "/v1/completions", key,
			map[string]any{"model": model, "prompt": *g.Prompt, "temperature": 0, "max_tokens": 40}, nil)
		if r.Status != 200 || r.Completion == 0 {
			t.Fatalf("request %d: %d %s", i, r.Status, r.Body)
		}
		prompt, completion = prompt+int64(r.PromptTokens), completion+int64(r.Completion)
		charge := int64(r.PromptTokens)*1 + int64(r.Completion)*3
		// The record is written just after the answer is sent.
		var s summary
		testenv.Eventually(t, 10*time.Second, "request settled", func() error {
			if s = ledgerSummary(t, o); s.Requests != int64(i) || s.Held != 0 {
				return fmt.Errorf("summary %+v", s)
			}
			return nil
		})
		// This request's record: each host's new tokens and earnings.
		now := payouts()
		if len(now) != 2 {
			t.Fatalf("payouts %v: main and backup both generate in parallel mode, both are paid", now)
		}
		delta := map[string]int64{}
		for id, p := range now {
			delta[id] = p.Tokens - last[id].Tokens
			tokens[id] = p.Tokens
		}
		exp, platform := split(charge, delta)
		var hosts int64
		for id, p := range now {
			if got := p.Micros - last[id].Micros; got != exp[id] || p.Requests != int64(i) {
				t.Fatalf("request %d: host %s earned %d, the pro rata rule gives %d of %d (tokens %v)", i, id, got, exp[id], charge, delta)
			}
			hosts += p.Micros - last[id].Micros
		}
		if hosts+platform != charge {
			t.Fatalf("request %d: hosts %d + platform %d != charge %d", i, hosts, platform, charge)
		}
		paid += hosts
		last = now
		t.Logf("request %d: %d prompt + %d completion tokens, charged %d: hosts %v (tokens %v), platform %d", i, r.PromptTokens, r.Completion, charge, exp, delta, platform)
	}
	want := prompt*1 + completion*3
	s := ledgerSummary(t, o)
	if s.Requests != 2 || s.Revenue != want || s.Hosts != paid || s.Hosts+s.Platform != s.Revenue {
		t.Fatalf("summary %+v, want revenue %d (prompt %d, completion %d), hosts %d", s, want, prompt, completion, paid)
	}
	acct, perKey := usageOf(t, o, key)
	if acct.Spent != want || perKey.Spent != want || acct.Requests != 2 || acct.CompletionTokens != completion {
		t.Fatalf("usage: account %+v key %+v, want spent %d", acct, perKey, want)
	}
	// The hosts' own token counters agree they did that work.
	for _, h := range hosts {
		if n := metric(t, h, "peerllm_host_tokens_total"); int64(n) < tokens[h.Creds.HostID] {
			t.Fatalf("host %s generated %v tokens, paid for %d", h.Name, n, tokens[h.Creds.HostID])
		}
	}

	if out := adminCLI(t, o, "ledger", "check"); !strings.Contains(out, "ledger ok") {
		t.Fatalf("ledger check:\n%s", out)
	}
	rows, err := csv.NewReader(strings.NewReader(adminCLI(t, o, "payouts", "--period", period, "--csv"))).ReadAll()
	if err != nil || len(rows) != 3 || rows[0][0] != "host_id" {
		t.Fatalf("payouts --csv: %v %v", rows, err)
	}
	for _, h := range hosts {
		out, err := runCLI(t, "host", "status", "--api", o.API, "--host-id", h.Creds.HostID, "--secret", h.Creds.Secret, "--period", period, "--json")
		var st struct {
			HostID string `json:"host_id"`
			Earned int64  `json:"earned_micros"`
		}
		if err != nil || json.Unmarshal([]byte(out), &st) != nil || st.HostID != h.Creds.HostID {
			t.Fatalf("host status: %v\n%s", err, out)
		}
		if p := last[st.HostID]; p.Micros != st.Earned {
			t.Fatalf("host status says %d, payouts %d", st.Earned, p.Micros)
		}
	}
	// A host sees only itself: another host's id with this host's secret fails.
	if out, err := runCLI(t, "host", "status", "--api", o.API, "--host-id", hosts[1].Creds.HostID, "--secret", hosts[0].Creds.Secret); err == nil {
		t.Fatalf("host status with a wrong secret succeeded:\n%s", out)
	}
}

// TestMoneyBudgets: a request that could cross a key's or an account's
// budget, or a prepaid balance, is refused with 402 before any host works;
// requests racing for the last of a budget never overspend. Runs on SQLite
// and (with PEERLLM_TEST_POSTGRES) PostgreSQL.
func TestMoneyBudgets(t *testing.T) {
	for _, db := range testenv.Databases(t) {
		t.Run(db.Name, func(t *testing.T) {
			args := []string{"--prices", pricesFile(t)}
			if db.Name == "postgres" {
				args = append(args, "--database-url", db.DSN)
			}
			o := testenv.StartOrchestrator(t, testenv.OrchestratorOptions{Args: args})
			probe := o.CreateKey(t, "probe")
			h := o.StartHost(t, testenv.HostOptions{Name: "b1", Owner: "o1", Region: "eu-west", Capacity: 8})
			o.WaitHosts(t, probe, model, 1)
			prompt := "Once upon a time" // 16 bytes: the hold counts 8+16+16 = 40 prompt tokens
			body := func(maxTokens int) map[string]any {
				return map[string]any{"model": model, "prompt": prompt, "temperature": 0, "max_tokens": maxTokens}
			}
			tasks := func() float64 { return metric(t, h, "peerllm_host_tasks_total") }

			// A school: one account, a budget per class key.
			adminCLI(t, o, "accounts", "create", "--name", "School", "--id", "school", "--budget", "1000000")
			classID, class := keyFor(t, o, "class-1", "school")
			adminCLI(t, o, "keys", "budget", classID, "--account", "school", "--monthly", "250")

			before := tasks()
			// Hold: 40 + 3×100 = 340 > 250.
			r := complete(ctxTimeout(t, time.Minute), t, nil, o.API, "/v1/completions", class, body(100), nil)
			if r.Status != http.StatusPaymentRequired || !strings.Contains(r.Body, `"code":"budget_exceeded"`) || !strings.Contains(r.Body, `"type":"insufficient_quota"`) {
				t.Fatalf("over a key budget: %d %s", r.Status, r.Body)
			}
			if n := tasks(); n != before {
				t.Fatalf("a refused request reached a host: tasks %v → %v", before, n)
			}

			// Race: each request holds 40 + 3×20 = 100; with 250, at most two
			// holds fit at once, and the spend can never pass 250.
			const racers = 8
			var wg sync.WaitGroup
			codes := make([]int, racers)
			for i := range racers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					codes[i] = raceRequest(o.API, class, body(20))
				}()
			}
			wg.Wait()
			ok := 0
			for _, c := range codes {
				switch c {
				case 200:
					ok++
				case http.StatusPaymentRequired:
				default:
					t.Fatalf("racing request: HTTP %d", c)
				}
			}
			// A request is settled just after its answer is sent.
			var perKey usageView
			testenv.Eventually(t, 10*time.Second, "racing requests settled", func() error {
				if _, perKey = usageOf(t, o, class); perKey.Held != 0 {
					return fmt.Errorf("still held: %+v", perKey)
				}
				return nil
			})
			if ok == 0 || perKey.Spent > 250 || perKey.Held != 0 || perKey.Requests != int64(ok) {
				t.Fatalf("race: %d succeeded, key usage %+v (budget 250)", ok, perKey)
			}

			// Prepaid: nothing until topped up.
			adminCLI(t, o, "accounts", "create", "--name", "Cafe", "--id", "cafe", "--prepaid")
			_, cafe := keyFor(t, o, "cafe-key", "cafe")
			before = tasks()
			r = complete(ctxTimeout(t, time.Minute), t, nil, o.API, "/v1/completions", cafe, body(10), nil)
			if r.Status != http.StatusPaymentRequired || !strings.Contains(r.Body, `"code":"insufficient_quota"`) {
				t.Fatalf("empty prepaid account: %d %s", r.Status, r.Body)
			}
			if n := tasks(); n != before {
				t.Fatalf("a refused request reached a host: tasks %v → %v", before, n)
			}
			adminCLI(t, o, "accounts", "topup", "cafe", "--amount", "1000", "--ref", "inv-1")
			adminCLI(t, o, "accounts", "topup", "cafe", "--amount", "1000", "--ref", "inv-1") // same ref: once
			r = complete(ctxTimeout(t, time.Minute), t, nil, o.API, "/v1/completions", cafe, body(10), nil)
			if r.Status != 200 {
				t.Fatalf("topped-up prepaid account: %d %s", r.Status, r.Body)
			}
			acct, _ := usageOf(t, o, cafe)
			var listed struct {
				Accounts []struct {
					ID      string `json:"id"`
					Balance int64  `json:"balance_micros"`
				} `json:"accounts"`
			}
			adminJSON := adminCLI(t, o, "accounts", "list", "--json")
			if err := json.Unmarshal([]byte(adminJSON), &listed); err != nil {
				t.Fatalf("accounts list --json: %v\n%s", err, adminJSON)
			}
			for _, a := range listed.Accounts {
				if a.ID == "cafe" && a.Balance != 1000-acct.Spent {
					t.Fatalf("cafe balance %d, want 1000 - %d", a.Balance, acct.Spent)
				}
			}
			if out := adminCLI(t, o, "ledger", "check"); !strings.Contains(out, "ledger ok") {
				t.Fatalf("ledger check:\n%s", out)
			}
		})
	}
}

// raceRequest posts body and returns the status, reading the whole answer.
func raceRequest(api, key string, body map[string]any) int {
	b, _ := json.Marshal(body)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", api+"/v1/completions", strings.NewReader(string(b)))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var v any
	json.NewDecoder(resp.Body).Decode(&v)
	return resp.StatusCode
}

// TestMoneyKillMidStream: the orchestrator is killed (SIGKILL) while an
// answer streams; after a restart the request is charged with the usage it
// had checkpointed at segment boundaries, the hosts are paid for it, and
// `admin ledger check` passes. On SQLite and PostgreSQL.
func TestMoneyKillMidStream(t *testing.T) {
	for _, db := range testenv.Databases(t) {
		t.Run(db.Name, func(t *testing.T) { testKillMidStream(t, db) })
	}
}

func testKillMidStream(t *testing.T, db testenv.Database) {
	args := []string{"--prices", pricesFile(t), "--segment-tokens", "4"}
	if db.Name == "postgres" {
		// One replica: its unfinished requests are settled at once at
		// start instead of after the shared-database default of 10 minutes.
		args = append(args, "--database-url", db.DSN, "--recover-after", "1ms")
	}
	opt := testenv.OrchestratorOptions{DataDir: t.TempDir(), APIPort: testenv.FreePort(t), NATSPort: testenv.FreePort(t), Args: args}
	o := testenv.StartOrchestrator(t, opt)
	key := o.CreateKey(t, "kill")
	for i, region := range []string{"eu-west", "us-east"} {
		o.StartHost(t, testenv.HostOptions{Name: fmt.Sprintf("k%d", i), Owner: fmt.Sprintf("owner%d", i), Region: region, Throttle: 40})
	}
	o.WaitHosts(t, key, model, 2)

	killed := false
	g := goldenCases(t)[0]
	r := complete(ctxTimeout(t, time.Minute), t, nil, o.API, "/v1/completions", key,
		map[string]any{"model": model, "prompt": *g.Prompt, "temperature": 0, "max_tokens": 200, "stream": true},
		func(text string) {
			// No token of the tiny model's vocabulary is longer than 7
			// bytes: 64 bytes delivered are more than the first segment
			// of 4 tokens, whose end was checkpointed before the second
			// segment started.
			if len(text) >= 64 && !killed {
				killed = true
				o.Kill()
			}
		})
	if !killed || r.Done {
		t.Fatalf("the stream was not cut: killed=%v done=%v", killed, r.Done)
	}
	opt.AdminToken = o.AdminToken
	o2 := testenv.StartOrchestrator(t, opt)
	if out := adminCLI(t, o2, "ledger", "check"); !strings.Contains(out, "ledger ok") {
		t.Fatalf("ledger check after the crash:\n%s", out)
	}
	s := ledgerSummary(t, o2)
	acct, _ := usageOf(t, o2, key)
	if s.Requests != 1 || s.Held != 0 || s.Revenue <= 0 || s.Hosts <= 0 || acct.CompletionTokens < 4 || acct.CompletionTokens > 200 ||
		s.Revenue != acct.PromptTokens+3*acct.CompletionTokens {
		t.Fatalf("after restart: summary %+v, usage %+v", s, acct)
	}
	t.Logf("recovered after kill -9: %d prompt + %d completion tokens charged %d micro-units, hosts %d, platform %d",
		acct.PromptTokens, acct.CompletionTokens, s.Revenue, s.Hosts, s.Platform)
	var pays struct {
		Payouts []payout `json:"payouts"`
	}
	out := adminCLI(t, o2, "payouts", "--period", time.Now().UTC().Format("2006-01"), "--json")
	if err := json.Unmarshal([]byte(out), &pays); err != nil || len(pays.Payouts) == 0 {
		t.Fatalf("payouts after the crash: %v\n%s", err, out)
	}
	var paid int64
	for _, p := range pays.Payouts {
		paid += p.Micros
	}
	if paid != s.Hosts {
		t.Fatalf("payouts %d, summary hosts %d", paid, s.Hosts)
	}
}

// TestMoneyOperations: the pricing page and dashboard are served; a price
// list reloaded on SIGHUP takes a new announced version and refuses a
// rewrite of a published one (keeping the list in use); `admin ledger check`
// exits non-zero naming what does not add up.
func TestMoneyOperations(t *testing.T) {
	prices := pricesFile(t)
	opt := testenv.OrchestratorOptions{DataDir: t.TempDir(), Args: []string{"--prices", prices}}
	o := testenv.StartOrchestrator(t, opt)
	for _, path := range []string{"/pricing", "/dashboard/"} {
		resp, err := http.Get(o.API + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}

	versions := func() []json.RawMessage {
		var p struct{ Versions []json.RawMessage }
		if code := o.Do(t, "GET", "/v1/pricing", "", nil, &p); code != 200 {
			t.Fatalf("pricing: HTTP %d", code)
		}
		return p.Versions
	}
	now := time.Now().UTC()
	v2 := fmt.Sprintf(`{"version":2,"published":%q,"effective":%q,"models":{"stories260K":{"input_per_million":1100000,"output_per_million":3300000}}}`,
		now.Format(time.RFC3339), now.Add(40*24*time.Hour).Format(time.RFC3339))
	v1 := testPrices[strings.Index(testPrices, `{"version":1`):strings.LastIndex(testPrices, "]}")]
	write := func(versions ...string) {
		t.Helper()
		if err := os.WriteFile(prices, []byte(`{"currency":"USD","versions":[`+strings.Join(versions, ",")+`]}`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(v1, v2)
	o.Signal(syscall.SIGHUP)
	testenv.Eventually(t, 10*time.Second, "reloaded list", func() error {
		if n := len(versions()); n != 2 {
			return fmt.Errorf("%d versions", n)
		}
		return nil
	})
	write(strings.Replace(v1, "3000000", "2000000", 1), v2) // rewrites the version in force
	o.Signal(syscall.SIGHUP)
	testenv.Eventually(t, 10*time.Second, "refusal logged", func() error {
		if !strings.Contains(o.Logs(), "price list reload refused") {
			return fmt.Errorf("no refusal in the log yet")
		}
		return nil
	})
	if vs := versions(); len(vs) != 2 || !strings.Contains(string(vs[0]), "3000000") {
		t.Fatalf("the refused list replaced the one in use: %s", vs)
	}

	// Books that do not add up: a balance changed behind the ledger's back.
	adminCLI(t, o, "accounts", "create", "--name", "Cafe", "--id", "cafe", "--prepaid")
	adminCLI(t, o, "accounts", "topup", "cafe", "--amount", "5000")
	if out := adminCLI(t, o, "ledger", "check"); !strings.Contains(out, "ledger ok") {
		t.Fatalf("ledger check:\n%s", out)
	}
	if err := o.Terminate(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	db := testenv.OpenStore(t, testenv.Database{Name: "sqlite", DSN: filepath.Join(opt.DataDir, "peerllm.db")})
	if _, err := db.ExecContext(context.Background(), `UPDATE ledger_balances SET balance_micros = balance_micros + 7 WHERE account_id = 'cafe'`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	write(v1, v2) // a list that breaks the rules also stops a start
	opt.AdminToken = o.AdminToken
	o2 := testenv.StartOrchestrator(t, opt)
	out, err := runCLI(t, "admin", "--server", o2.API, "--admin-token", o2.AdminToken, "ledger", "check")
	if err == nil || !strings.Contains(out, "balance_mismatch cafe") || !strings.Contains(out, "ledger check failed") {
		t.Fatalf("ledger check of tampered books: %v\n%s", err, out)
	}
}
