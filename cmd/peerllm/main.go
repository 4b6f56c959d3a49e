// Command peerllm is the single PeerLLM binary: the orchestrator (serve), the
// host agent (host), the one-command demo, the local engine CLI (generate),
// operator tools (admin, bench) and the standalone safety/privacy screens.
// Each subcommand lives in its own file; main only dispatches.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// command is one subcommand. run gets the arguments after the subcommand's
// name and a context cancelled on SIGINT/SIGTERM.
type command struct {
	summary string
	run     func(ctx context.Context, args []string) error
}

var commands = map[string]command{
	"serve":    {"run the orchestrator (API, dashboard, embedded NATS and SQLite)", runServe},
	"host":     {"run a host agent that dials out to an orchestrator and serves tasks", runHost},
	"demo":     {"start an orchestrator and local hosts on the tiny model", runDemo},
	"generate": {"generate text locally with the built-in engine", runGenerate},
	"admin":    {"operator tasks: API keys, hosts, strikes, ledger, payouts", runAdmin},
	"bench":    {"benchmarks: engine, orchestrator overhead, classifiers", runBench},
	"safety":   {"the safety screen on its own (safety check --jsonl)", runSafety},
	"privacy":  {"the privacy scanner on its own (privacy scan --jsonl)", runPrivacy},
	"eval":     {"measure the safety or privacy layer on labelled data", runEval},
	"version":  {"print the version", runVersion},
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() {
	os.Exit(realMain(os.Args[1:]))
}

func realMain(args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage()
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "peerllm: unknown command %q (run 'peerllm help')\n", args[0])
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cmd.run(ctx, args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(os.Stderr, "peerllm %s: %s\n", args[0], oneLine(err.Error()))
			return 2
		}
		fmt.Fprintf(os.Stderr, "peerllm %s: %s\n", args[0], oneLine(err.Error()))
		return 1
	}
	return 0
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: peerllm <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-9s %s\n", n, commands[n].summary)
	}
}

// oneLine joins the lines of a multi-line error (some drivers' errors
// have them) with "; ", so a failure is always one line on stderr.
func oneLine(msg string) string {
	lines := strings.Split(strings.TrimSpace(msg), "\n")
	out := lines[:0]
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l != "" {
			out = append(out, strings.TrimSuffix(l, ":"))
		}
	}
	return strings.Join(out, "; ")
}

// usageError marks a mistake in the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// newFlags returns a FlagSet for subcommand name that reports errors instead
// of exiting, so every subcommand fails with one plain line.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("peerllm "+name, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	return fs
}

// parseFlags parses args into fs and turns a flag error into a usageError.
func parseFlags(fs *flag.FlagSet, args []string) error {
	// Parse itself calls Usage on -h; silence it so a custom Usage that
	// writes to os.Stderr directly does not print twice.
	usage := fs.Usage
	fs.Usage = func() {}
	fs.SetOutput(discard{})
	err := fs.Parse(args)
	fs.SetOutput(os.Stderr)
	fs.Usage = usage
	if errors.Is(err, flag.ErrHelp) {
		fs.Usage()
		return err
	}
	if err != nil {
		return usageError{err.Error()}
	}
	return nil
}

// isHelp reports whether arg asks for help, for subcommands that dispatch on
// a word before their flags (safety check, privacy scan, eval safety).
func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "help"
}

// printHelp prints a subcommand's usage line and returns flag.ErrHelp, which
// main turns into exit status 0.
func printHelp(line string) error {
	fmt.Fprintln(os.Stderr, line)
	return flag.ErrHelp
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func runVersion(ctx context.Context, args []string) error {
	if len(args) > 0 {
		return usagef("version takes no arguments")
	}
	fmt.Println("peerllm", version)
	return nil
}
