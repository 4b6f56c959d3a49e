package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/peerllm/peerllm/internal/ledger"
)

// adminMoneyUsage lists the money commands of `peerllm admin`.
const adminMoneyUsage = `
money commands (amounts are integer micro-units of the price list's currency):
  ledger check                                    verify every record and balance; exit 1 with the offending ids
  ledger summary                                  revenue, hosts' and platform's shares, requests, held
  payouts [--period YYYY-MM] [--csv]              each host's earnings for a month (default: this month)
  accounts create --name N [--id ID] [--prepaid] [--budget MICROS]
                                                  create a consumer account (keys bill to its id)
  accounts topup ID --amount MICROS [--ref R]     credit a prepaid account (the same ref credits once)
  accounts list                                   list accounts with balances and budgets
  keys budget KEY_ID --monthly MICROS [--account A]
                                                  a key's own monthly budget (0: only the account's)`

// runAdminMoney runs the money commands; handled is false for other commands.
func runAdminMoney(ctx context.Context, c *adminClient, group, verb string, rest []string) (handled bool, err error) {
	switch group + " " + verb {
	case "ledger check":
		return true, adminLedgerCheck(ctx, c)
	case "ledger summary":
		var s struct {
			Currency       string `json:"currency"`
			RevenueMicros  int64  `json:"revenue_micros"`
			HostsMicros    int64  `json:"hosts_micros"`
			PlatformMicros int64  `json:"platform_micros"`
			Requests       int64  `json:"requests"`
			HeldMicros     int64  `json:"held_micros"`
		}
		raw, err := c.do(ctx, "GET", "/admin/v1/ledger/summary", nil, &s)
		if err != nil || c.json {
			return true, jsonOrErr(raw, err)
		}
		fmt.Printf("requests:  %d\nrevenue:   %s\nhosts:     %s\nplatform:  %s\nheld now:  %s\n", s.Requests,
			money(s.RevenueMicros, s.Currency), money(s.HostsMicros, s.Currency), money(s.PlatformMicros, s.Currency), money(s.HeldMicros, s.Currency))
		return true, nil
	case "accounts create":
		fs := newFlags("admin accounts create")
		name := fs.String("name", "", "account name (required)")
		id := fs.String("id", "", "account id (default: generated); API keys bill to it with keys create --account ID")
		prepaid := fs.Bool("prepaid", false, "prepaid: may spend only its topped-up balance")
		budget := fs.Int64("budget", 0, "hard monthly budget in micro-units (0: none)")
		if err := parseFlags(fs, rest); err != nil {
			return true, err
		}
		if fs.NArg() > 0 {
			return true, usagef("unexpected argument %q (flags go before it)", fs.Arg(0))
		}
		if *name == "" {
			return true, usagef("accounts create needs --name")
		}
		var out struct {
			Account accountRow `json:"account"`
		}
		raw, err := c.do(ctx, "POST", "/admin/v1/accounts", map[string]any{"id": *id, "name": *name, "prepaid": *prepaid, "monthly_budget_micros": *budget}, &out)
		if err != nil || c.json {
			return true, jsonOrErr(raw, err)
		}
		fmt.Println(out.Account.ID)
		return true, nil
	case "accounts topup":
		fs := newFlags("admin accounts topup")
		amount := fs.Int64("amount", 0, "amount in micro-units (required)")
		ref := fs.String("ref", "", "payment reference; the same ref credits once")
		id, err := oneArgAndFlags(fs, rest, "accounts topup needs one account id")
		if err != nil {
			return true, err
		}
		if *amount <= 0 {
			return true, usagef("accounts topup needs --amount MICROS > 0")
		}
		var out struct {
			Account accountRow `json:"account"`
		}
		raw, err := c.do(ctx, "POST", "/admin/v1/accounts/"+url.PathEscape(id)+"/topup", map[string]any{"amount_micros": *amount, "ref": *ref}, &out)
		if err != nil || c.json {
			return true, jsonOrErr(raw, err)
		}
		fmt.Printf("%s balance %d micro-units\n", out.Account.ID, out.Account.Balance)
		return true, nil
	case "accounts list":
		var out struct {
			Accounts []accountRow `json:"accounts"`
		}
		raw, err := c.do(ctx, "GET", "/admin/v1/accounts", nil, &out)
		if err != nil || c.json {
			return true, jsonOrErr(raw, err)
		}
		tw := table("ID", "NAME", "PREPAID", "BALANCE_MICROS", "MONTHLY_BUDGET_MICROS")
		for _, a := range out.Accounts {
			fmt.Fprintf(tw, "%s\t%s\t%v\t%d\t%d\n", a.ID, a.Name, a.Prepaid, a.Balance, a.Budget)
		}
		return true, tw.Flush()
	case "keys budget":
		fs := newFlags("admin keys budget")
		account := fs.String("account", "", "the account the key bills to (checked; default: the key's)")
		monthly := fs.Int64("monthly", -1, "the key's monthly budget in micro-units (0: only the account's)")
		id, err := oneArgAndFlags(fs, rest, "keys budget needs one key id")
		if err != nil {
			return true, err
		}
		if *monthly < 0 {
			return true, usagef("keys budget needs --monthly MICROS (0 removes the key's own budget)")
		}
		raw, err := c.do(ctx, "PUT", "/admin/v1/keys/"+url.PathEscape(id)+"/budget", map[string]any{"account": *account, "monthly_budget_micros": *monthly}, nil)
		if err != nil || c.json {
			return true, jsonOrErr(raw, err)
		}
		fmt.Printf("key %s: monthly budget %d micro-units\n", id, *monthly)
		return true, nil
	}
	if group == "payouts" {
		// "payouts" has no verb: what follows it is flags.
		return true, adminPayouts(ctx, c, append([]string{verb}, rest...))
	}
	return false, nil
}

type accountRow struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Prepaid bool   `json:"prepaid"`
	Budget  int64  `json:"monthly_budget_micros"`
	Balance int64  `json:"balance_micros"`
}

// oneArgAndFlags parses "ID --flags..." or "--flags... ID".
func oneArgAndFlags(fs *flag.FlagSet, rest []string, msg string) (string, error) {
	var id string
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		id, rest = rest[0], rest[1:]
	}
	if err := parseFlags(fs, rest); err != nil {
		return "", err
	}
	if id == "" && fs.NArg() == 1 {
		id = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return "", usagef("%s", msg)
	}
	if id == "" {
		return "", usagef("%s", msg)
	}
	return id, nil
}

// adminLedgerCheck fails (exit 1) with the offending ids when the books do
// not add up.
func adminLedgerCheck(ctx context.Context, c *adminClient) error {
	var out struct {
		OK       bool `json:"ok"`
		Problems []struct {
			Kind string `json:"kind"`
			ID   string `json:"id"`
			Want int64  `json:"want"`
			Got  int64  `json:"got"`
		} `json:"problems"`
	}
	raw, err := c.do(ctx, "GET", "/admin/v1/ledger/check", nil, &out)
	if err != nil {
		return err
	}
	if c.json {
		if err := printRaw(raw); err != nil {
			return err
		}
	}
	if out.OK && len(out.Problems) == 0 {
		if !c.json {
			fmt.Println("ledger ok: every record balances and every account's balance matches its postings")
		}
		return nil
	}
	ids := make([]string, 0, len(out.Problems))
	for _, p := range out.Problems {
		if !c.json {
			fmt.Printf("%s %s: want %d, got %d\n", p.Kind, p.ID, p.Want, p.Got)
		}
		ids = append(ids, p.ID)
	}
	return fmt.Errorf("ledger check failed: %d problems: %s", len(out.Problems), strings.Join(ids, ", "))
}

func adminPayouts(ctx context.Context, c *adminClient, args []string) error {
	fs := newFlags("admin payouts")
	period := fs.String("period", time.Now().UTC().Format("2006-01"), "month as YYYY-MM")
	asCSV := fs.Bool("csv", false, "print CSV")
	asJSON := fs.Bool("json", c.json, "print JSON")
	var clean []string
	for _, a := range args {
		if a != "" {
			clean = append(clean, a)
		}
	}
	if err := parseFlags(fs, clean); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *asCSV && *asJSON {
		return usagef("--csv and --json exclude each other")
	}
	if err := ledger.ValidPeriod(*period); err != nil {
		return usagef("--period must be a month as YYYY-MM, e.g. 2026-11, got %q", *period)
	}
	path := "/admin/v1/payouts?period=" + url.QueryEscape(*period)
	if *asCSV {
		raw, err := c.do(ctx, "GET", path+"&format=csv", nil, nil)
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(raw)
		return err
	}
	var out struct {
		Period   string `json:"period"`
		Currency string `json:"currency"`
		Total    int64  `json:"total_micros"`
		Payouts  []struct {
			HostID   string `json:"host_id"`
			Micros   int64  `json:"earned_micros"`
			Tokens   int64  `json:"tokens"`
			Requests int64  `json:"requests"`
		} `json:"payouts"`
	}
	raw, err := c.do(ctx, "GET", path, nil, &out)
	if err != nil || *asJSON {
		return jsonOrErr(raw, err)
	}
	tw := table("HOST", "EARNED_MICROS", "EARNED", "TOKENS", "REQUESTS")
	for _, p := range out.Payouts {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\n", p.HostID, p.Micros, money(p.Micros, out.Currency), p.Tokens, p.Requests)
	}
	fmt.Fprintf(tw, "total\t%d\t%s\t\t\n", out.Total, money(out.Total, out.Currency))
	return tw.Flush()
}

// money formats micro-units as currency units with all six decimals.
func money(micros int64, currency string) string {
	sign := ""
	if micros < 0 {
		sign, micros = "-", -micros
	}
	return fmt.Sprintf("%s%d.%06d %s", sign, micros/1_000_000, micros%1_000_000, currency)
}
