package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/peerllm/peerllm/internal/ledger"
)

// runHostStatus is `peerllm host status`: the host's own earnings for a
// month and its strikes, from the orchestrator's HTTP API, authenticated
// with the host's id and secret (the same credentials it dials NATS with).
func runHostStatus(ctx context.Context, args []string) error {
	fs := newFlags("host status")
	api := fs.String("api", "", "orchestrator HTTP API URL, e.g. https://orch.example (default $PEERLLM_API)")
	credFile := fs.String("credentials", "", `credentials file: JSON {"url","host_id","secret"} as printed by peerllm admin`)
	hostID := fs.String("host-id", "", "host id (or from --credentials)")
	secret := fs.String("secret", "", "host secret (default $PEERLLM_HOST_SECRET, or from --credentials)")
	period := fs.String("period", time.Now().UTC().Format("2006-01"), "month as YYYY-MM")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *api == "" {
		*api = os.Getenv("PEERLLM_API")
	}
	if *secret == "" {
		*secret = os.Getenv("PEERLLM_HOST_SECRET")
	}
	creds := hostCredentials{HostID: *hostID, Secret: *secret}
	if *credFile != "" {
		file, err := readCredentials(*credFile)
		if err != nil {
			return err
		}
		creds = mergeCredentials(creds, file)
	}
	switch {
	case *api == "":
		return usagef("--api (the orchestrator's HTTP URL) or $PEERLLM_API is required")
	case creds.HostID == "" || creds.Secret == "":
		return usagef("the host id and secret are required: --credentials FILE, or --host-id and --secret")
	case ledger.ValidPeriod(*period) != nil:
		return usagef("--period must be a month as YYYY-MM, e.g. 2026-11, got %q", *period)
	}
	if u, err := url.Parse(*api); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("--api must be an http:// or https:// URL, got %q", *api)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	u := strings.TrimRight(*api, "/") + "/host/v1/status?period=" + url.QueryEscape(*period)
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(creds.HostID, creds.Secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("reach orchestrator: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Message string } `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error.Message != "" {
			return fmt.Errorf("%s (HTTP %d)", strings.TrimSuffix(e.Error.Message, "."), resp.StatusCode)
		}
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	if *asJSON {
		return printRaw(raw)
	}
	var st struct {
		HostID   string `json:"host_id"`
		Name     string `json:"name"`
		Tier     string `json:"tier"`
		Status   string `json:"status"`
		Period   string `json:"period"`
		Currency string `json:"currency"`
		Earned   int64  `json:"earned_micros"`
		Tokens   int64  `json:"tokens"`
		Requests int64  `json:"requests"`
		Strikes  []struct {
			Reason string    `json:"reason"`
			At     time.Time `json:"at"`
		} `json:"strikes"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	fmt.Printf("host:      %s %s\n", st.HostID, st.Name)
	if st.Tier != "" || st.Status != "" {
		fmt.Printf("tier:      %s (%s)\n", st.Tier, st.Status)
	}
	fmt.Printf("period:    %s\nearned:    %s (%d micro-units)\ntokens:    %d in %d requests\nstrikes:   %d\n",
		st.Period, money(st.Earned, st.Currency), st.Earned, st.Tokens, st.Requests, len(st.Strikes))
	for _, s := range st.Strikes {
		fmt.Printf("  %s  %s\n", s.At.Format(time.RFC3339), s.Reason)
	}
	return nil
}
