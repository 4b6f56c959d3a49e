package httpapi

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/peerllm/peerllm/internal/ledger"
)

// Money serves the routes about money: the public price list, a consumer's
// own usage, the ledger's admin routes (summary, check, payouts, accounts,
// key budgets) and a host's own earnings and strikes.
type Money struct {
	Ledger *ledger.Ledger
	// Rules are the pricing rules the list was validated against; shown
	// with the list. Zero means ledger.DefaultPricingRules().
	Rules ledger.PricingRules
	// VerifyHost checks a host's id and secret (the registry's check); nil
	// disables /host/v1/status.
	VerifyHost func(hostID, secret string) bool
	// Hosts looks up a host's tier, status and strikes; may be nil.
	Hosts HostAdmin
	// Now is the clock for the current period; default time.Now.
	Now func() time.Time
}

func (m *Money) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Money) routes(mux *http.ServeMux, s *Server) {
	mux.HandleFunc("GET /v1/pricing", m.pricing)
	mux.Handle("GET /v1/usage", s.consumer(http.HandlerFunc(m.usage)))
	mux.HandleFunc("GET /host/v1/status", m.hostStatus)
	if a := s.cfg.Admin; a != nil {
		h := func(pattern string, f func(w http.ResponseWriter, r *http.Request) error) {
			mux.Handle(pattern, a.guard(s, f))
		}
		h("GET /admin/v1/ledger/summary", m.summary)
		h("GET /admin/v1/ledger/check", m.check)
		h("GET /admin/v1/payouts", m.payouts)
		h("POST /admin/v1/accounts", m.createAccount)
		h("GET /admin/v1/accounts", m.listAccounts)
		h("GET /admin/v1/accounts/{id}", m.getAccount)
		h("POST /admin/v1/accounts/{id}/topup", m.topUp)
		h("PUT /admin/v1/keys/{id}/budget", func(w http.ResponseWriter, r *http.Request) error { return m.keyBudget(w, r, a.Keys) })
	}
}

// moneyError maps the ledger's errors to API errors.
func moneyError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ledger.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "not_found", Message: "No such id."}
	}
	return err
}

// periodParam reads ?period=YYYY-MM, defaulting to the current month (UTC).
func (m *Money) periodParam(r *http.Request) (string, error) {
	p := r.URL.Query().Get("period")
	if p == "" {
		return m.now().UTC().Format("2006-01"), nil
	}
	if err := ledger.ValidPeriod(p); err != nil {
		return "", badParam("period", "'period' must be a month as YYYY-MM, e.g. %s.", m.now().UTC().Format("2006-01"))
	}
	return p, nil
}

// pricing serves the published price list to anyone (no key): the versions,
// which one is in force now, and the rules that bound changes.
func (m *Money) pricing(w http.ResponseWriter, r *http.Request) {
	pl := m.Ledger.Prices()
	rules := m.Rules
	if rules == (ledger.PricingRules{}) {
		rules = ledger.DefaultPricingRules()
	}
	inForce := 0
	if v := pl.At(m.now()); v != nil {
		inForce = v.Version
	}
	w.Header().Set("Cache-Control", "public, max-age=60")
	writeJSON(w, http.StatusOK, map[string]any{
		"object":   "pricing",
		"currency": pl.Currency,
		"unit":     "micro-units of the currency per million tokens",
		"in_force": inForce,
		"versions": pl.Versions,
		"rules": map[string]any{
			"notice_days":        int(rules.NoticePeriod / (24 * time.Hour)),
			"max_change_percent": rules.MaxChangePercent,
			"change_period_days": int(rules.ChangePeriod / (24 * time.Hour)),
			"host_share_percent": ledger.HostSharePercent,
		},
	})
}

// usage shows the caller's own spend: its account's and its key's, for one
// period. The account and key come from the API key, never from the query.
func (m *Money) usage(w http.ResponseWriter, r *http.Request) {
	key := apiKey(r.Context())
	period, err := m.periodParam(r)
	if err != nil {
		writeError(w, errorFor(err, ""))
		return
	}
	acct, err := m.Ledger.Usage(r.Context(), key.Account, "", period)
	var kusage ledger.ConsumerUsage
	if err == nil {
		kusage, err = m.Ledger.Usage(r.Context(), key.Account, key.ID, period)
	}
	if errors.Is(err, ledger.ErrNotFound) {
		// No request yet: the account is created on first use.
		cur := m.Ledger.Prices().Currency
		acct = ledger.ConsumerUsage{AccountID: key.Account, Period: period, Currency: cur}
		kusage = ledger.ConsumerUsage{AccountID: key.Account, KeyID: key.ID, Period: period, Currency: cur}
		err = nil
	}
	if err != nil {
		writeError(w, errorFor(err, ""))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "usage", "period": period, "account": acct, "key": kusage})
}

func (m *Money) summary(w http.ResponseWriter, r *http.Request) error {
	s, err := m.Ledger.Summary(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s)
	return nil
}

func (m *Money) check(w http.ResponseWriter, r *http.Request) error {
	problems, err := m.Ledger.Check(r.Context())
	if err != nil {
		return err
	}
	if problems == nil {
		problems = []ledger.Problem{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": len(problems) == 0, "problems": problems})
	return nil
}

// payouts reports each host's earnings for ?period=YYYY-MM, as JSON or
// (?format=csv) CSV.
func (m *Money) payouts(w http.ResponseWriter, r *http.Request) error {
	period, err := m.periodParam(r)
	if err != nil {
		return err
	}
	ps, err := m.Ledger.Payouts(r.Context(), period)
	if err != nil {
		return err
	}
	if ps == nil {
		ps = []ledger.Payout{}
	}
	cur := m.Ledger.Prices().Currency
	if r.URL.Query().Get("format") == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		cw := csv.NewWriter(w)
		cw.Write([]string{"host_id", "period", "currency", "earned_micros", "tokens", "requests"})
		for _, p := range ps {
			cw.Write([]string{p.HostID, p.Period, cur, strconv.FormatInt(p.Micros, 10), strconv.FormatInt(p.Tokens, 10), strconv.FormatInt(p.Requests, 10)})
		}
		cw.Flush()
		return nil
	}
	var total int64
	for _, p := range ps {
		total += p.Micros
	}
	writeJSON(w, http.StatusOK, map[string]any{"period": period, "currency": cur, "total_micros": total, "payouts": ps})
	return nil
}

func (m *Money) createAccount(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		ID      string `json:"id"`
		Name    string `json:"name"`
		Prepaid bool   `json:"prepaid"`
		Budget  int64  `json:"monthly_budget_micros"`
	}
	if err := decodeAdmin(r, &in); err != nil {
		return err
	}
	if in.Name == "" {
		return badParam("name", "'name' is required.")
	}
	if in.Budget < 0 {
		return badParam("monthly_budget_micros", "'monthly_budget_micros' must not be negative.")
	}
	if _, err := m.Ledger.Account(r.Context(), in.ID); in.ID != "" && err == nil {
		return &Error{Status: http.StatusConflict, Type: "invalid_request_error", Param: "id", Code: "already_exists", Message: "An account with this id exists."}
	}
	a, err := m.Ledger.CreateAccount(r.Context(), ledger.Account{ID: in.ID, Name: in.Name, Prepaid: in.Prepaid, MonthlyBudget: in.Budget})
	if err != nil {
		if in.ID != "" {
			return badParam("id", "Cannot create account %q: the id is reserved or taken.", in.ID)
		}
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"account": a})
	return nil
}

func (m *Money) listAccounts(w http.ResponseWriter, r *http.Request) error {
	as, err := m.Ledger.ListAccounts(r.Context())
	if err != nil {
		return err
	}
	if as == nil {
		as = []ledger.Account{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"accounts": as})
	return nil
}

func (m *Money) getAccount(w http.ResponseWriter, r *http.Request) error {
	a, err := m.Ledger.Account(r.Context(), r.PathValue("id"))
	if err != nil {
		return moneyError(err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"account": a})
	return nil
}

func (m *Money) topUp(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Amount int64  `json:"amount_micros"`
		Ref    string `json:"ref"`
	}
	if err := decodeAdmin(r, &in); err != nil {
		return err
	}
	if in.Amount <= 0 || in.Amount > ledger.MaxAmount {
		return badParam("amount_micros", "'amount_micros' must be a positive whole number of micro-units up to %d.", int64(ledger.MaxAmount))
	}
	id := r.PathValue("id")
	if err := m.Ledger.TopUp(r.Context(), id, in.Amount, in.Ref); err != nil {
		return moneyError(err)
	}
	a, err := m.Ledger.Account(r.Context(), id)
	if err != nil {
		return moneyError(err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"account": a})
	return nil
}

// keyBudget sets an API key's own monthly budget within its account (a
// school: one budget per class key).
func (m *Money) keyBudget(w http.ResponseWriter, r *http.Request, keys KeyAdmin) error {
	var in struct {
		Account string `json:"account"`
		Monthly int64  `json:"monthly_budget_micros"`
	}
	if err := decodeAdmin(r, &in); err != nil {
		return err
	}
	if in.Monthly < 0 || in.Monthly > ledger.MaxAmount {
		return badParam("monthly_budget_micros", "'monthly_budget_micros' must be between 0 (no key budget) and %d.", int64(ledger.MaxAmount))
	}
	id := r.PathValue("id")
	list, err := keys.List(r.Context())
	if err != nil {
		return err
	}
	found := false
	for _, k := range list {
		if k.ID == id {
			found = true
			if in.Account == "" {
				in.Account = k.Account
			}
			if k.Account != in.Account {
				return badParam("account", "Key %s bills to account %q, not %q.", id, k.Account, in.Account)
			}
		}
	}
	if !found {
		return moneyError(ledger.ErrNotFound)
	}
	if _, err := m.Ledger.Account(r.Context(), in.Account); errors.Is(err, ledger.ErrNotFound) {
		// The key's account exists implicitly (created on first use).
		if _, err := m.Ledger.CreateAccount(r.Context(), ledger.Account{ID: in.Account, Name: in.Account}); err != nil {
			return err
		}
	}
	if err := m.Ledger.SetKeyBudget(r.Context(), id, in.Account, in.Monthly); err != nil {
		return moneyError(err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"key_id": id, "account": in.Account, "monthly_budget_micros": in.Monthly})
	return nil
}

// hostStatus shows a host its own earnings and strikes. It authenticates the
// host's id and secret (HTTP Basic auth) the way the NATS server does, so a
// host sees only itself.
func (m *Money) hostStatus(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if !ok || m.VerifyHost == nil || !m.verify(id, secret) {
		w.Header().Set("WWW-Authenticate", `Basic realm="peerllm host"`)
		writeError(w, &Error{Status: http.StatusUnauthorized, Type: "invalid_request_error", Code: "invalid_host_credentials",
			Message: "Incorrect or missing host credentials. Pass the host id and secret as HTTP Basic auth."})
		return
	}
	period, err := m.periodParam(r)
	if err != nil {
		writeError(w, errorFor(err, ""))
		return
	}
	ctx := r.Context()
	p, err := m.Ledger.HostEarnings(ctx, id, period)
	if err != nil {
		writeError(w, errorFor(err, ""))
		return
	}
	out := map[string]any{"host_id": id, "period": period, "currency": m.Ledger.Prices().Currency,
		"earned_micros": p.Micros, "tokens": p.Tokens, "requests": p.Requests, "strikes": []StrikeInfo{}}
	if m.Hosts != nil {
		if info, err := m.hostInfo(ctx, id); err == nil {
			out["name"], out["tier"], out["status"] = info.Name, info.Tier, info.Status
		}
		strikes, err := m.Hosts.Strikes(ctx, id)
		if err != nil {
			writeError(w, errorFor(fmt.Errorf("host strikes: %w", err), ""))
			return
		}
		if strikes != nil {
			out["strikes"] = strikes
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (m *Money) verify(id, secret string) bool {
	return id != "" && secret != "" && m.VerifyHost(id, secret)
}

func (m *Money) hostInfo(ctx context.Context, id string) (HostInfo, error) {
	hs, err := m.Hosts.ListHosts(ctx)
	if err != nil {
		return HostInfo{}, err
	}
	for _, h := range hs {
		if h.ID == id {
			return h, nil
		}
	}
	return HostInfo{}, ErrHostNotFound
}
