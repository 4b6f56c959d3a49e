package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/testenv"
)

// TestAdminCLI drives `peerllm admin` against a running orchestrator: keys,
// hosts with credentials a host agent uses, secret rotation, strikes.
func TestAdminCLI(t *testing.T) {
	o := testenv.StartOrchestrator(t, testenv.OrchestratorOptions{})
	admin := func(args ...string) string {
		t.Helper()
		p := testenv.StartProc(t, "admin", append([]string{"admin", "--server", o.API, "--admin-token", o.AdminToken}, args...)...)
		select {
		case <-p.Done():
		case <-time.After(30 * time.Second):
			t.Fatalf("admin %v hangs", args)
		}
		if err := p.Err(); err != nil {
			t.Fatalf("admin %v: %v\n%s", args, err, p.Logs())
		}
		return p.Logs()
	}

	var created struct {
		Key    struct{ ID string }
		Secret string
	}
	if err := json.Unmarshal([]byte(admin("keys", "create", "--name", "school-a", "--json")), &created); err != nil || created.Secret == "" {
		t.Fatalf("keys create --json: %v", err)
	}
	if out := admin("keys", "list"); !strings.Contains(out, created.Key.ID) || !strings.Contains(out, "school-a") || strings.Contains(out, created.Secret) {
		t.Fatalf("keys list:\n%s", out)
	}

	var creds testenv.Credentials
	if err := json.Unmarshal([]byte(admin("hosts", "add", "--name", "alice-pc", "--owner", "alice", "--region", "eu-west")), &creds); err != nil || creds.Secret == "" || creds.URL != o.NATS {
		t.Fatalf("hosts add printed unusable credentials %+v: %v", creds, err)
	}
	h := o.RunHost(t, creds, testenv.HostOptions{Name: "alice-pc"})
	o.WaitHosts(t, created.Secret, model, 1)
	if out := admin("hosts", "list"); !strings.Contains(out, creds.HostID) || !strings.Contains(out, "true") {
		t.Fatalf("hosts list does not show the connected host:\n%s", out)
	}

	// Rotation: the old secret is refused from the next connect on.
	var rotated testenv.Credentials
	if err := json.Unmarshal([]byte(admin("hosts", "credentials", creds.HostID)), &rotated); err != nil || rotated.Secret == creds.Secret || rotated.HostID != creds.HostID {
		t.Fatalf("hosts credentials: %+v %v", rotated, err)
	}
	h.Terminate(10 * time.Second)
	old := o.RunHost(t, creds, testenv.HostOptions{Name: "alice-pc-old"})
	select {
	case <-old.Done():
		if old.Err() == nil {
			t.Fatal("a host with the old secret exited cleanly")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a host with the old secret was not refused")
	}
	o.RunHost(t, rotated, testenv.HostOptions{Name: "alice-pc-new"})
	o.WaitHosts(t, created.Secret, model, 1)

	if out := admin("strikes", "list", "--json"); !strings.Contains(out, `"strikes"`) {
		t.Fatalf("strikes list: %s", out)
	}
	admin("strikes", "clear", creds.HostID)
	admin("keys", "revoke", created.Key.ID)
	if code := o.Do(t, "GET", "/v1/models", created.Secret, nil, nil); code != 401 {
		t.Fatalf("revoked key: HTTP %d", code)
	}
	admin("hosts", "remove", creds.HostID)
	if out := admin("hosts", "list", "--json"); strings.Contains(out, creds.HostID) {
		t.Fatalf("removed host still listed: %s", out)
	}
}
