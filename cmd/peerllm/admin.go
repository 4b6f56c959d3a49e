package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

const adminUsage = `usage: peerllm admin [--server URL] [--admin-token T] [--json] <command>

commands:
  keys create [--name N] [--account A] [--key K]   create an API key (shown once)
  keys list                                       list API keys
  keys revoke ID                                  revoke an API key
  hosts add --name N --owner O [--region R] [--tier T]
                                                  register a host; prints its credentials JSON
  hosts list                                      list hosts
  hosts remove ID                                 remove a host
  hosts credentials ID                            issue new credentials (the old secret stops working)
  strikes list [HOST]                             list strikes
  strikes clear HOST                              clear a host's strikes and lift its suspension

The admin token comes from --admin-token or PEERLLM_ADMIN_TOKEN.` + adminMoneyUsage + adminGovUsage

// runAdmin talks to a running orchestrator's admin API.
func runAdmin(ctx context.Context, args []string) error {
	fs := newFlags("admin")
	server := fs.String("server", "http://127.0.0.1:8080", "orchestrator URL")
	token := fs.String("admin-token", "", "admin token (default $PEERLLM_ADMIN_TOKEN)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	fs.Usage = func() { fmt.Fprintln(os.Stderr, adminUsage) }
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *token == "" {
		*token = os.Getenv("PEERLLM_ADMIN_TOKEN")
	}
	// --json may also follow the command words (admin hosts list --json).
	var rest []string
	for _, a := range fs.Args() {
		if a == "--json" || a == "-json" {
			*asJSON = true
			continue
		}
		rest = append(rest, a)
	}
	if len(rest) == 1 && (rest[0] == "payouts" || rest[0] == "seats" || rest[0] == "federation" || rest[0] == "overview") {
		rest = append(rest, "") // payouts takes flags only
	}
	if len(rest) > 1 && (rest[1] == "-h" || rest[1] == "-help" || rest[1] == "--help") {
		fs.Usage()
		return flag.ErrHelp
	}
	if len(rest) == 0 {
		return usagef("need a command, e.g. 'keys list' (peerllm admin -h)")
	}
	if len(rest) < 2 {
		return usagef("unknown admin command %q (peerllm admin -h)", rest[0])
	}
	if u, err := url.Parse(*server); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("--server must be an http:// or https:// URL, got %q", *server)
	}
	c := &adminClient{base: strings.TrimRight(*server, "/"), token: *token, json: *asJSON}
	group, verb, rest := rest[0], rest[1], rest[2:]
	switch cmd := group + " " + verb; {
	case group == "overview" && verb != "":
		return usagef("overview takes no arguments")
	case len(rest) > 0 && (cmd == "keys list" || cmd == "hosts list" || cmd == "ledger check" ||
		cmd == "ledger summary" || cmd == "accounts list"):
		return usagef("%s takes no arguments", cmd)
	case cmd == "strikes list" && len(rest) > 1:
		return usagef("strikes list takes at most one host id")
	}
	switch group + " " + verb {
	case "keys create":
		fs := newFlags("admin keys create")
		name := fs.String("name", "", "key name")
		account := fs.String("account", "", "account the key bills to (default: the name)")
		key := fs.String("key", "", "use this exact key instead of a random one (at least 32 characters)")
		preferTier := fs.String("prefer-tier", "", "prefer hosts of this tier for the key's requests (enterprise)")
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return usagef("unexpected argument %q (flags go before it)", fs.Arg(0))
		}
		if *preferTier != "" && *preferTier != "standard" && *preferTier != "enterprise" {
			return usagef("--prefer-tier must be standard or enterprise")
		}
		acct := *account
		if acct == "" {
			acct = *name
		}
		var out struct {
			Key    map[string]any `json:"key"`
			Secret string         `json:"secret"`
		}
		raw, err := c.do(ctx, "POST", "/admin/v1/keys", map[string]string{"name": *name, "account": acct, "key": *key}, &out)
		if err != nil {
			return err
		}
		var tierErr error
		if *preferTier != "" {
			tierErr = setKeyTier(ctx, c, fmt.Sprint(out.Key["id"]), *preferTier)
		}
		// The secret is shown only now: print it even if the tier failed.
		if c.json {
			if err := printRaw(raw); err != nil {
				return err
			}
		} else {
			fmt.Printf("id:     %v\nname:   %v\nkey:    %s\n(the key is shown only now; store it safely)\n", out.Key["id"], out.Key["name"], out.Secret)
		}
		if tierErr != nil {
			return fmt.Errorf("the key was created (printed above) but %w", tierErr)
		}
		return nil
	case "keys list":
		var out struct {
			Keys []struct {
				ID, Name, Account, Hint string
				CreatedAt               time.Time  `json:"created_at"`
				RevokedAt               *time.Time `json:"revoked_at"`
			} `json:"keys"`
		}
		raw, err := c.do(ctx, "GET", "/admin/v1/keys", nil, &out)
		if err != nil || c.json {
			return jsonOrErr(raw, err)
		}
		tw := table("ID", "NAME", "ACCOUNT", "HINT", "CREATED", "STATUS")
		for _, k := range out.Keys {
			status := "active"
			if k.RevokedAt != nil {
				status = "revoked " + k.RevokedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Account, k.Hint, k.CreatedAt.Format(time.RFC3339), status)
		}
		return tw.Flush()
	case "keys revoke":
		if len(rest) != 1 {
			return usagef("keys revoke needs one key id")
		}
		raw, err := c.do(ctx, "DELETE", "/admin/v1/keys/"+rest[0], nil, nil)
		if err != nil || c.json {
			return jsonOrErr(raw, err)
		}
		fmt.Println("revoked", rest[0])
		return nil
	case "hosts add":
		fs := newFlags("admin hosts add")
		name := fs.String("name", "", "host name")
		owner := fs.String("owner", "", "owner (who is paid)")
		region := fs.String("region", "", "region, e.g. eu-west")
		tier := fs.String("tier", "standard", "standard or enterprise")
		fallback := fs.Bool("fallback", false, "an operator-run fallback host: tasks only when no community host can take them")
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return usagef("unexpected argument %q (flags go before it)", fs.Arg(0))
		}
		var out struct {
			Credentials json.RawMessage `json:"credentials"`
		}
		raw, err := c.do(ctx, "POST", "/admin/v1/hosts", map[string]string{"name": *name, "owner": *owner, "region": *region, "tier": *tier}, &out)
		if err != nil {
			return err
		}
		var fbErr error
		if *fallback {
			fbErr = setHostFallback(ctx, c, out.Credentials, true)
		}
		// The secret is shown only now: print it even if --fallback failed.
		if c.json {
			err = printRaw(raw)
		} else {
			// The credentials JSON alone, ready for peerllm host --credentials.
			err = printRaw(out.Credentials)
		}
		if err == nil && fbErr != nil {
			err = fmt.Errorf("the host was created (credentials printed above) but %w", fbErr)
		}
		return err
	case "hosts list":
		var out struct {
			Hosts []struct {
				ID, Name, Owner, Region, Tier, Status string
				Connected                             bool
				Strikes                               int
				Models                                []string
			} `json:"hosts"`
		}
		raw, err := c.do(ctx, "GET", "/admin/v1/hosts", nil, &out)
		if err != nil || c.json {
			return jsonOrErr(raw, err)
		}
		tw := table("ID", "NAME", "OWNER", "REGION", "TIER", "STATUS", "CONNECTED", "STRIKES", "MODELS")
		for _, h := range out.Hosts {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%v\t%d\t%s\n", h.ID, h.Name, h.Owner, h.Region, h.Tier, h.Status, h.Connected, h.Strikes, strings.Join(h.Models, ","))
		}
		return tw.Flush()
	case "hosts remove":
		if len(rest) != 1 {
			return usagef("hosts remove needs one host id")
		}
		raw, err := c.do(ctx, "DELETE", "/admin/v1/hosts/"+rest[0], nil, nil)
		if err != nil || c.json {
			return jsonOrErr(raw, err)
		}
		fmt.Println("removed", rest[0])
		return nil
	case "hosts credentials":
		if len(rest) != 1 {
			return usagef("hosts credentials needs one host id")
		}
		var out struct {
			Credentials json.RawMessage `json:"credentials"`
		}
		raw, err := c.do(ctx, "POST", "/admin/v1/hosts/"+rest[0]+"/credentials", nil, &out)
		if err != nil {
			return err
		}
		if c.json {
			return printRaw(raw)
		}
		return printRaw(out.Credentials)
	case "strikes list":
		path := "/admin/v1/strikes"
		if len(rest) == 1 {
			path += "?host=" + rest[0]
		}
		var out struct {
			Strikes []struct {
				HostID string    `json:"host_id"`
				Reason string    `json:"reason"`
				At     time.Time `json:"at"`
			} `json:"strikes"`
		}
		raw, err := c.do(ctx, "GET", path, nil, &out)
		if err != nil || c.json {
			return jsonOrErr(raw, err)
		}
		tw := table("HOST", "REASON", "AT")
		for _, s := range out.Strikes {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", s.HostID, s.Reason, s.At.Format(time.RFC3339))
		}
		return tw.Flush()
	case "strikes clear":
		if len(rest) != 1 {
			return usagef("strikes clear needs one host id")
		}
		raw, err := c.do(ctx, "DELETE", "/admin/v1/strikes/"+rest[0], nil, nil)
		if err != nil || c.json {
			return jsonOrErr(raw, err)
		}
		fmt.Println("cleared strikes of", rest[0])
		return nil
	}
	if handled, err := runAdminMoney(ctx, c, group, verb, rest); handled {
		return err
	}
	if handled, err := runAdminGov(ctx, c, group, verb, rest); handled {
		return err
	}
	return usagef("unknown admin command %q (peerllm admin -h)", group+" "+verb)
}

type adminClient struct {
	base, token string
	json        bool
}

// do sends one admin request; a non-2xx answer becomes an error carrying the
// server's message.
func (c *adminClient) do(ctx context.Context, method, path string, in, out any) ([]byte, error) {
	if c.token == "" {
		// Checked here, after the command and its flags, so a mistyped
		// command is reported as such rather than as a missing token.
		return nil, usagef("no admin token: pass --admin-token or set PEERLLM_ADMIN_TOKEN")
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	} else if method == "POST" {
		body = strings.NewReader("{}")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reach orchestrator: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct{ Message string } `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error.Message != "" {
			return nil, fmt.Errorf("%s (HTTP %d)", strings.TrimSuffix(e.Error.Message, "."), resp.StatusCode)
		}
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("decode answer: %w", err)
		}
	}
	return raw, nil
}

func table(cols ...string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(cols, "\t"))
	return tw
}

// jsonOrErr ends a command that failed, or that was asked for --json.
func jsonOrErr(raw []byte, err error) error {
	if err != nil {
		return err
	}
	return printRaw(raw)
}

func printRaw(raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(raw), "", "  "); err != nil {
		os.Stdout.Write(raw)
		return nil
	}
	buf.WriteByte('\n')
	_, err := os.Stdout.Write(buf.Bytes())
	return err
}
