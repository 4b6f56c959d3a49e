package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCLI runs realMain with args as the command line and returns its exit
// status and what it wrote to stdout and stderr.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	dir := t.TempDir()
	outF, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	errF, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	oldOut, oldErr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = outF, errF
	code = realMain(args)
	os.Stdout, os.Stderr = oldOut, oldErr
	outF.Close()
	errF.Close()
	o, _ := os.ReadFile(outF.Name())
	e, _ := os.ReadFile(errF.Name())
	return code, string(o), string(e)
}

// TestBadCommandLines checks the CLI contract on mistakes that need no
// server or model: exit 2 for a usage mistake with exactly one plain line on
// stderr and nothing on stdout, exit 0 for -h with the usage printed once.
func TestBadCommandLines(t *testing.T) {
	t.Setenv("PEERLLM_ADMIN_TOKEN", "")
	garbage := filepath.Join(t.TempDir(), "garbage.jsonl")
	if err := os.WriteFile(garbage, []byte("not json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(t.TempDir(), "empty.jsonl")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tok := []string{"admin", "--admin-token", "t0ken"}
	cases := []struct {
		name string
		args []string
		code int
		want string // in stderr
	}{
		{"version with an argument", []string{"version", "x"}, 2, "no arguments"},
		{"admin -h prints usage once", []string{"admin", "-h"}, 0, "usage: peerllm admin"},
		{"admin keys -h", []string{"admin", "keys", "-h"}, 0, "usage: peerllm admin"},
		{"admin unknown group", []string{"admin", "bogus"}, 2, `unknown admin command "bogus"`},
		{"admin no command", []string{"admin"}, 2, "need a command"},
		{"admin unknown verb without a token", []string{"admin", "keys", "bogus"}, 2, `unknown admin command "keys bogus"`},
		{"admin bad flag without a token", []string{"admin", "keys", "create", "--bogus"}, 2, "-bogus"},
		{"admin keys create bad tier", append(tok, "keys", "create", "--name", "n", "--prefer-tier", "gold"), 2, "--prefer-tier"},
		{"admin keys create stray word", append(tok, "keys", "create", "myname", "--name", "n"), 2, `unexpected argument "myname"`},
		{"admin hosts add stray word", append(tok, "hosts", "add", "pc", "--name", "n", "--owner", "o"), 2, `unexpected argument "pc"`},
		{"admin accounts create stray word", append(tok, "accounts", "create", "acme", "--name", "n"), 2, `unexpected argument "acme"`},
		{"admin keys tier without a tier", append(tok, "keys", "tier", "key_x"), 2, "--prefer-tier"},
		{"admin keys tier stray word", append(tok, "keys", "tier", "key_x", "--prefer-tier", "enterprise", "extra"), 2, `unexpected argument "extra"`},
		{"admin no token", []string{"admin", "keys", "list"}, 2, "no admin token"},
		{"admin server not a URL", append(tok, "--server", "notaurl", "keys", "list"), 2, "--server"},
		{"admin server ftp", append(tok, "--server", "ftp://x", "keys", "list"), 2, "--server"},
		{"admin keys list extra", append(tok, "keys", "list", "extra"), 2, "keys list takes no arguments"},
		{"admin ledger check extra", append(tok, "ledger", "check", "extra"), 2, "ledger check takes no arguments"},
		{"admin overview extra", append(tok, "overview", "x"), 2, "overview takes no arguments"},
		{"admin seats extra", append(tok, "seats", "extra"), 2, `unexpected argument "extra"`},
		{"admin strikes list two hosts", append(tok, "strikes", "list", "a", "b"), 2, "at most one"},
		{"admin payouts month 13", append(tok, "payouts", "--period", "2026-13"), 2, "--period"},
		{"admin payouts one-digit month", append(tok, "payouts", "--period", "2026-1"), 2, "--period"},
		{"host status api not a URL", []string{"host", "status", "--api", "notaurl", "--host-id", "h", "--secret", "s"}, 2, "--api"},
		{"host status bad period", []string{"host", "status", "--api", "http://127.0.0.1:1", "--host-id", "h", "--secret", "s", "--period", "2026-13"}, 2, "--period"},
		{"serve negative segment", []string{"serve", "--segment-tokens", "-1"}, 2, "--segment-tokens"},
		{"serve negative queue bound", []string{"serve", "--queue-bound", "-5s"}, 2, "--queue-bound"},
		{"serve negative seats", []string{"serve", "--seats-min", "-1"}, 2, "--seats-min"},
		{"bench engine negative threads", []string{"bench", "engine", "--threads", "-3"}, 2, "--threads not negative"},
		{"demo capacity 0", []string{"demo", "--capacity", "0"}, 2, "--capacity"},
		{"demo negative throttle", []string{"demo", "--throttle", "-1"}, 2, "--throttle"},
		{"demo unknown engine", []string{"demo", "--engine", "bogus"}, 2, "--engine"},
		{"demo extra argument", []string{"demo", "extra"}, 2, `unexpected argument "extra"`},
		{"safety -h", []string{"safety", "-h"}, 0, "usage: peerllm safety check"},
		{"privacy -h", []string{"privacy", "--help"}, 0, "usage: peerllm privacy scan"},
		{"eval -h", []string{"eval", "-h"}, 0, "usage: peerllm eval"},
		{"serve -h prints usage once", []string{"serve", "-h"}, 0, "Usage of peerllm serve"},
		{"safety check extra", []string{"safety", "check", "--jsonl", "extra"}, 2, `unexpected argument "extra"`},
		{"privacy scan extra", []string{"privacy", "scan", "--jsonl", "extra"}, 2, `unexpected argument "extra"`},
		{"eval safety extra", []string{"eval", "safety", "--data", garbage, "extra"}, 2, `unexpected argument "extra"`},
		{"eval privacy extra", []string{"eval", "privacy", "--data", garbage, "extra"}, 2, `unexpected argument "extra"`},
		{"eval safety no examples", []string{"eval", "safety", "--data", empty}, 1, "no labelled examples"},
		{"eval privacy empty file", []string{"eval", "privacy", "--data", empty}, 1, "want a JSON array"},
		{"eval privacy not an array", []string{"eval", "privacy", "--data", garbage}, 1, "want a JSON array"},
		{"eval privacy missing file", []string{"eval", "privacy", "--data", "/nonexistent/x.json"}, 1, "open /nonexistent/x.json"},
		{"generate negative max tokens", []string{"generate", "--model", "x", "--max-tokens", "-1"}, 2, "--max-tokens"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, c.args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d (stderr %q)", code, c.code, stderr)
			}
			if strings.Count(stderr, c.want) != 1 {
				t.Fatalf("stderr holds %q %d times, want once:\n%s", c.want, strings.Count(stderr, c.want), stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			if c.code != 0 {
				if n := strings.Count(stderr, "\n"); n != 1 || !strings.HasPrefix(stderr, "peerllm ") {
					t.Errorf("stderr is not one plain line: %q", stderr)
				}
				if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "Usage of") {
					t.Errorf("stderr has a trace or a usage dump: %q", stderr)
				}
			}
		})
	}
}

func TestOneLine(t *testing.T) {
	cases := []struct{ in, want string }{
		{"plain", "plain"},
		{"connect: failed to connect to `db`:\n\thost1: refused\n\thost2: refused\n", "connect: failed to connect to `db`; host1: refused; host2: refused"},
		{"a\n\nb", "a; b"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			if got := oneLine(c.in); got != c.want {
				t.Fatalf("oneLine(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}
