package httpapi_test

import (
	"context"
	"encoding/csv"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/auth"
	"github.com/peerllm/peerllm/internal/billing"
	"github.com/peerllm/peerllm/internal/httpapi"
	"github.com/peerllm/peerllm/internal/ledger"
	"github.com/peerllm/peerllm/internal/pipeline"
	"github.com/peerllm/peerllm/internal/store"
)

// 1 micro-unit per prompt token, 3 per completion token.
const moneyPrices = `{"currency":"EUR","versions":[{"version":1,"effective":"2026-01-01T00:00:00Z",
 "models":{"tiny":{"input_per_million":1000000,"output_per_million":3000000}}}]}`

type moneyEnv struct {
	srv     *httptest.Server
	backend *fakeBackend
	db      *store.DB
	ledger  *ledger.Ledger
	keys    *auth.Keys
	admin   string
	now     time.Time
}

func newMoneyEnv(t *testing.T) *moneyEnv {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	keys, err := auth.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	adminTok := "admin-token-for-tests-0123456789"
	at, _, err := keys.SetupAdmin(ctx, adminTok)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := ledger.ParsePriceList(strings.NewReader(moneyPrices), ledger.DefaultPricingRules())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 5, 12, 0, 0, 0, time.UTC)
	l, err := ledger.Open(ctx, db, pl, ledger.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	b := billing.New(billing.Config{Ledger: l})
	fb := &fakeBackend{models: []httpapi.Model{{Name: "tiny", Hosts: 2, ContextLength: 512}}, generate: pieces("Once", " upon", " a", " time")}
	s := httpapi.New(httpapi.Config{Backend: fb, Keys: keys,
		Chain: &pipeline.Chain{Stages: []pipeline.Stage{b}, Meters: []pipeline.Meter{b}},
		Admin: &httpapi.Admin{Token: at, Keys: keys, HostURL: "nats://x"},
		Money: &httpapi.Money{Ledger: l, Now: func() time.Time { return now },
			// A double for the registry's credential check.
			VerifyHost: func(id, secret string) bool { return id == "h1" && secret == "s1" || id == "h2" && secret == "s2" }},
	})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &moneyEnv{srv: srv, backend: fb, db: db, ledger: l, keys: keys, admin: adminTok, now: now}
}

func (e *moneyEnv) do(t *testing.T, method, path, token, body string) *http.Response {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, r)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func (e *moneyEnv) key(t *testing.T, name, account string) (string, string) {
	t.Helper()
	k, secret, err := e.keys.Create(context.Background(), name, account, "")
	if err != nil {
		t.Fatal(err)
	}
	return k.ID, secret
}

const tinyBody = `{"model":"tiny","prompt":"hi","max_tokens":4}`

func TestPricingIsPublic(t *testing.T) {
	e := newMoneyEnv(t)
	resp := e.do(t, "GET", "/v1/pricing", "", "")
	v := decode[struct {
		Currency string `json:"currency"`
		InForce  int    `json:"in_force"`
		Versions []ledger.PriceVersion
		Rules    map[string]int `json:"rules"`
	}](t, resp)
	if resp.StatusCode != 200 || v.Currency != "EUR" || v.InForce != 1 || len(v.Versions) != 1 ||
		v.Versions[0].Models["tiny"].OutputPerMillion != 3_000_000 || v.Rules["host_share_percent"] != 95 || v.Rules["notice_days"] != 30 {
		t.Fatalf("pricing: %d %+v", resp.StatusCode, v)
	}
}

type usageResp struct {
	Account ledger.ConsumerUsage `json:"account"`
	Key     ledger.ConsumerUsage `json:"key"`
}

func TestUsageIsTheCallersOwn(t *testing.T) {
	e := newMoneyEnv(t)
	_, a1 := e.key(t, "a1", "school")
	_, a2 := e.key(t, "a2", "school")
	_, other := e.key(t, "b", "shop")
	if resp := e.do(t, "POST", "/v1/completions", a1, tinyBody); resp.StatusCode != 200 {
		t.Fatalf("completion: %d", resp.StatusCode)
	}
	want := int64(3*1 + 4*3) // the fake reports 3 prompt and 4 completion tokens
	cases := []struct {
		name            string
		key, query      string
		status          int
		account, ownKey int64
	}{
		{"the key that spent", a1, "", 200, want, want},
		{"another key of the same account", a2, "", 200, want, 0},
		{"another account, even when asking for this one", other, "?account=school&key_id=x", 200, 0, 0},
		{"another period", a1, "?period=2026-10", 200, 0, 0},
		{"a bad period", a1, "?period=2026-13", 400, 0, 0},
		{"no key", "", "", 401, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := e.do(t, "GET", "/v1/usage"+c.query, c.key, "")
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.status)
			}
			if c.status != 200 {
				return
			}
			u := decode[usageResp](t, resp)
			if u.Account.SpentMicros != c.account || u.Key.SpentMicros != c.ownKey || u.Account.Currency != "EUR" {
				t.Fatalf("usage %+v, want account %d key %d", u, c.account, c.ownKey)
			}
		})
	}
}

func TestBudgetRefusedBeforeAnyHostWorks(t *testing.T) {
	e := newMoneyEnv(t)
	ctx := context.Background()
	id, secret := e.key(t, "class", "school")
	if _, err := e.ledger.CreateAccount(ctx, ledger.Account{ID: "school", Name: "School"}); err != nil {
		t.Fatal(err)
	}
	// The hold for tinyBody is (8 + 2 + 16) + 3×4 = 38.
	if err := e.ledger.SetKeyBudget(ctx, id, "school", 37); err != nil {
		t.Fatal(err)
	}
	resp := e.do(t, "POST", "/v1/completions", secret, tinyBody)
	v := decode[apiErr](t, resp)
	if resp.StatusCode != http.StatusPaymentRequired || v.Error.Type != "insufficient_quota" || v.Error.Code != "budget_exceeded" || v.Error.Param != nil {
		t.Fatalf("over budget: %d %+v", resp.StatusCode, v)
	}
	if n := e.backend.calls.Load(); n != 0 {
		t.Fatalf("the backend ran %d times for a refused request", n)
	}
	if err := e.ledger.SetKeyBudget(ctx, id, "school", 38); err != nil {
		t.Fatal(err)
	}
	if resp := e.do(t, "POST", "/v1/completions", secret, tinyBody); resp.StatusCode != 200 {
		t.Fatalf("within budget: %d", resp.StatusCode)
	}
}

// TestCheckpointSurvivesACrash: the usage checkpointed at a segment boundary
// is what a restarted orchestrator (a second Ledger on the same store)
// settles while the first is still stuck; when the first finally meters,
// nothing is charged twice.
func TestCheckpointSurvivesACrash(t *testing.T) {
	e := newMoneyEnv(t)
	_, secret := e.key(t, "k", "acct")
	release := make(chan struct{})
	checkpointed := make(chan struct{})
	e.backend.generate = func(ctx context.Context, req httpapi.GenRequest, emit func(httpapi.Delta) error) (httpapi.GenOutcome, error) {
		if err := emit(httpapi.Delta{Text: "Once", Tokens: 2}); err != nil {
			return httpapi.GenOutcome{}, err
		}
		req.Progress(httpapi.GenOutcome{PromptTokens: 3, CompletionTokens: 2, HostTokens: map[string]int{"h1": 2, "h2": 1}})
		close(checkpointed)
		<-release
		return httpapi.GenOutcome{FinishReason: "length", PromptTokens: 3, CompletionTokens: 4, HostTokens: map[string]int{"h1": 4, "h2": 3}}, nil
	}
	done := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequest("POST", e.srv.URL+"/v1/completions", strings.NewReader(tinyBody))
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- nil
			return
		}
		resp.Body.Close()
		done <- resp
	}()
	<-checkpointed
	ctx := context.Background()
	l2, err := ledger.Open(ctx, e.db, e.ledger.Prices(), ledger.Options{Now: func() time.Time { return e.now }})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := l2.Recover(ctx, 0); err != nil || n != 1 {
		t.Fatalf("recover: %d %v", n, err)
	}
	s, _ := l2.Summary(ctx)
	if s.RevenueMicros != 3+2*3 || s.HostsMicros != 8 || s.HeldMicros != 0 {
		t.Fatalf("after recovery: %+v", s)
	}
	close(release)
	if resp := <-done; resp == nil || resp.StatusCode != 200 {
		t.Fatalf("the request did not finish")
	}
	s2, _ := l2.Summary(ctx)
	if s2 != s {
		t.Fatalf("settled twice: %+v then %+v", s, s2)
	}
	if problems, err := l2.Check(ctx); err != nil || len(problems) != 0 {
		t.Fatalf("check: %v %v", problems, err)
	}
}

func TestMoneyAdminRoutes(t *testing.T) {
	e := newMoneyEnv(t)
	keyID, secret := e.key(t, "class-1", "school")
	steps := []struct {
		name, method, path, body string
		status                   int
		contains                 string
	}{
		{"no admin token", "GET", "/admin/v1/ledger/summary", "", 401, ""},
		{"create prepaid account", "POST", "/admin/v1/accounts", `{"id":"school","name":"School","prepaid":true,"monthly_budget_micros":1000}`, 201, `"prepaid":true`},
		{"same id again", "POST", "/admin/v1/accounts", `{"id":"school","name":"Other"}`, 409, "already_exists"},
		{"reserved id", "POST", "/admin/v1/accounts", `{"id":"platform","name":"X"}`, 400, ""},
		{"negative budget", "POST", "/admin/v1/accounts", `{"name":"X","monthly_budget_micros":-1}`, 400, ""},
		{"no name", "POST", "/admin/v1/accounts", `{}`, 400, ""},
		{"top up", "POST", "/admin/v1/accounts/school/topup", `{"amount_micros":500,"ref":"inv-1"}`, 200, `"balance_micros":500`},
		{"the same ref credits once", "POST", "/admin/v1/accounts/school/topup", `{"amount_micros":500,"ref":"inv-1"}`, 200, `"balance_micros":500`},
		{"negative top-up", "POST", "/admin/v1/accounts/school/topup", `{"amount_micros":-5}`, 400, ""},
		{"overflowing top-up", "POST", "/admin/v1/accounts/school/topup", `{"amount_micros":9223372036854775807}`, 400, ""},
		{"top up nobody", "POST", "/admin/v1/accounts/nobody/topup", `{"amount_micros":5}`, 404, ""},
		{"key budget", "PUT", "/admin/v1/keys/" + keyID + "/budget", `{"account":"school","monthly_budget_micros":100}`, 200, `"monthly_budget_micros":100`},
		{"key budget on the wrong account", "PUT", "/admin/v1/keys/" + keyID + "/budget", `{"account":"shop","monthly_budget_micros":100}`, 400, ""},
		{"key budget for no key", "PUT", "/admin/v1/keys/key_nope/budget", `{"monthly_budget_micros":100}`, 404, ""},
		{"list accounts", "GET", "/admin/v1/accounts", "", 200, `"id":"school"`},
		{"ledger check", "GET", "/admin/v1/ledger/check", "", 200, `"ok":true`},
		{"bad period", "GET", "/admin/v1/payouts?period=2026-1", "", 400, ""},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			tok := e.admin
			if s.status == 401 {
				tok = ""
			}
			resp := e.do(t, s.method, s.path, tok, s.body)
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != s.status || !strings.Contains(string(b), s.contains) {
				t.Fatalf("%s %s: %d %s, want %d with %q", s.method, s.path, resp.StatusCode, b, s.status, s.contains)
			}
		})
	}
	e.backend.generate = func(ctx context.Context, req httpapi.GenRequest, emit func(httpapi.Delta) error) (httpapi.GenOutcome, error) {
		emit(httpapi.Delta{Text: "Once upon", Tokens: 4})
		return httpapi.GenOutcome{FinishReason: "length", PromptTokens: 3, CompletionTokens: 4, HostTokens: map[string]int{"h1": 4, "h2": 4}}, nil
	}
	if resp := e.do(t, "POST", "/v1/completions", secret, tinyBody); resp.StatusCode != 200 {
		t.Fatalf("completion: %d", resp.StatusCode)
	}
	sum := decode[ledger.Summary](t, e.do(t, "GET", "/admin/v1/ledger/summary", e.admin, ""))
	// 15 charged; hosts 14 (floor of 95%), 7 each; platform 1.
	if sum.RevenueMicros != 15 || sum.HostsMicros != 14 || sum.PlatformMicros != 1 || sum.Requests != 1 || sum.Currency != "EUR" {
		t.Fatalf("summary %+v", sum)
	}
	resp := e.do(t, "GET", "/admin/v1/payouts?period=2026-11&format=csv", e.admin, "")
	rows, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil || len(rows) != 3 || rows[1][0] != "h1" || rows[1][3] != "7" || rows[2][3] != "7" {
		t.Fatalf("payouts csv: %v %v", rows, err)
	}

	// A host sees its own earnings, authenticated by its id and secret.
	hostCases := []struct {
		name, id, secret string
		status           int
		earned           int64
	}{
		{"own credentials", "h1", "s1", 200, 7},
		{"another host's secret", "h1", "s2", 401, 0},
		{"no credentials", "", "", 401, 0},
	}
	for _, c := range hostCases {
		t.Run("host status/"+c.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", e.srv.URL+"/host/v1/status?period=2026-11", nil)
			if c.id != "" {
				req.SetBasicAuth(c.id, c.secret)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.status)
			}
			if c.status == 200 {
				v := decode[struct {
					HostID string `json:"host_id"`
					Earned int64  `json:"earned_micros"`
				}](t, resp)
				if v.HostID != c.id || v.Earned != c.earned {
					t.Fatalf("host status %+v", v)
				}
			}
		})
	}
}
