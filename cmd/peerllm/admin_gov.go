package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// adminGovUsage lists the governance commands of `peerllm admin`.
const adminGovUsage = `

governance commands (docs/GOVERNANCE.md):
  seats [--region R]                              seats per region and each host's seat or waitlist position
  federation                                      federation readiness per region (30-day revenue, active hosts)
  overview                                        the dashboard's JSON (hosts, traffic, seats, ledger, payouts)
  keys tier ID --prefer-tier T                    make a key prefer enterprise hosts (standard: any host)
  hosts fallback ID on|off                        mark a host as an operator-run fallback host
  (keys create --prefer-tier enterprise and hosts add --fallback do the same at creation)`

// runAdminGov runs the governance commands; handled is false for others.
func runAdminGov(ctx context.Context, c *adminClient, group, verb string, rest []string) (handled bool, err error) {
	switch group {
	case "seats":
		args := rest
		if verb != "" {
			args = append([]string{verb}, rest...)
		}
		fs := newFlags("admin seats")
		region := fs.String("region", "", "only this region")
		if err := parseFlags(fs, args); err != nil {
			return true, err
		}
		if fs.NArg() > 0 {
			return true, usagef("unexpected argument %q", fs.Arg(0))
		}
		return true, adminSeats(ctx, c, *region)
	case "federation":
		if verb != "" {
			return true, usagef("federation takes no arguments")
		}
		return true, adminFederation(ctx, c)
	case "overview":
		raw, err := c.do(ctx, "GET", "/admin/v1/overview", nil, nil)
		return true, jsonOrErr(raw, err)
	}
	switch group + " " + verb {
	case "keys tier":
		fs := newFlags("admin keys tier")
		tier := fs.String("prefer-tier", "", "enterprise, or standard for any host")
		if len(rest) < 1 {
			return true, usagef("keys tier needs a key id")
		}
		if err := parseFlags(fs, rest[1:]); err != nil {
			return true, err
		}
		if fs.NArg() > 0 {
			return true, usagef("unexpected argument %q", fs.Arg(0))
		}
		if *tier != "standard" && *tier != "enterprise" {
			return true, usagef("keys tier needs --prefer-tier standard or enterprise")
		}
		if err := setKeyTier(ctx, c, rest[0], *tier); err != nil {
			return true, err
		}
		fmt.Printf("key %s prefers tier %q\n", rest[0], *tier)
		return true, nil
	case "hosts fallback":
		if len(rest) != 2 || (rest[1] != "on" && rest[1] != "off") {
			return true, usagef("hosts fallback needs a host id and on or off")
		}
		creds, _ := json.Marshal(map[string]string{"host_id": rest[0]})
		if err := setHostFallback(ctx, c, creds, rest[1] == "on"); err != nil {
			return true, err
		}
		fmt.Printf("host %s fallback %s\n", rest[0], rest[1])
		return true, nil
	}
	return false, nil
}

func setKeyTier(ctx context.Context, c *adminClient, keyID, tier string) error {
	_, err := c.do(ctx, "PUT", "/admin/v1/keys/"+url.PathEscape(keyID)+"/tier", map[string]string{"tier": tier}, nil)
	if err != nil {
		return fmt.Errorf("set key tier: %w", err)
	}
	return nil
}

// setHostFallback marks the host named by a credentials JSON ({host_id}).
func setHostFallback(ctx context.Context, c *adminClient, creds json.RawMessage, on bool) error {
	var cr struct {
		HostID string `json:"host_id"`
	}
	if err := json.Unmarshal(creds, &cr); err != nil || cr.HostID == "" {
		return fmt.Errorf("set fallback: no host id in the answer")
	}
	_, err := c.do(ctx, "PUT", "/admin/v1/hosts/"+url.PathEscape(cr.HostID)+"/fallback", map[string]bool{"fallback": on}, nil)
	if err != nil {
		return fmt.Errorf("set fallback: %w", err)
	}
	return nil
}

func adminSeats(ctx context.Context, c *adminClient, region string) error {
	path := "/admin/v1/seats"
	if region != "" {
		path += "?region=" + url.QueryEscape(region)
	}
	var out struct {
		Regions []struct {
			Region                 string
			Seats, Active, Waiting int
			Peak                   float64 `json:"peak_streams"`
		} `json:"regions"`
		Seats []struct {
			HostID     string    `json:"host_id"`
			Region     string    `json:"region"`
			State      string    `json:"state"`
			Position   int       `json:"position"`
			LastActive time.Time `json:"last_active"`
		} `json:"seats"`
	}
	raw, err := c.do(ctx, "GET", path, nil, &out)
	if err != nil || c.json {
		return jsonOrErr(raw, err)
	}
	tw := table("REGION", "SEATS", "ACTIVE", "WAITING", "PEAK STREAMS")
	for _, r := range out.Regions {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.1f\n", r.Region, r.Seats, r.Active, r.Waiting, r.Peak)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Println()
	tw = table("HOST", "REGION", "STATE", "POSITION", "LAST ACTIVE")
	for _, s := range out.Seats {
		pos := "-"
		if s.State == "waiting" {
			pos = fmt.Sprint(s.Position)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.HostID, s.Region, s.State, pos, s.LastActive.Format(time.RFC3339))
	}
	return tw.Flush()
}

func adminFederation(ctx context.Context, c *adminClient) error {
	var out struct {
		Regions []struct {
			Region          string  `json:"region"`
			RevenueMicros   int64   `json:"revenue_micros"`
			RevenueTarget   int64   `json:"revenue_threshold_micros"`
			ActiveHosts     int     `json:"active_hosts"`
			HostsTarget     int     `json:"active_hosts_threshold"`
			Ready           bool    `json:"ready"`
			RevenueProgress float64 `json:"revenue_progress"`
			HostsProgress   float64 `json:"hosts_progress"`
		} `json:"regions"`
		ComputedAt time.Time `json:"computed_at"`
	}
	raw, err := c.do(ctx, "GET", "/admin/v1/federation", nil, &out)
	if err != nil || c.json {
		return jsonOrErr(raw, err)
	}
	tw := table("REGION", "REVENUE (30 DAYS)", "TARGET", "ACTIVE HOSTS", "TARGET", "READY")
	for _, r := range out.Regions {
		ready := "no"
		if r.Ready {
			ready = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s (%.0f%% / %.0f%%)\n", r.Region, strings.TrimSpace(money(r.RevenueMicros, "")), strings.TrimSpace(money(r.RevenueTarget, "")),
			r.ActiveHosts, r.HostsTarget, ready, 100*r.RevenueProgress, 100*r.HostsProgress)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Printf("computed %s\n", out.ComputedAt.Format(time.RFC3339))
	return nil
}
