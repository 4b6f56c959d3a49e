package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
	"unicode/utf8"

	"github.com/peerllm/peerllm/internal/safety"
)

// runSafety runs "safety check --jsonl": one JSON object with a "text" field
// per stdin line in, one {"flagged","categories","scores"} line per input
// out, in the same order. Blank lines are skipped. A malformed line stops the
// run with an error naming the line (exit 1); every line before it has been
// answered and flushed, so output never loses its alignment with input.
func runSafety(ctx context.Context, args []string) error {
	if len(args) > 0 && isHelp(args[0]) {
		return printHelp("usage: peerllm safety check --jsonl [--policy FILE]")
	}
	if len(args) == 0 || args[0] != "check" {
		return usagef("usage: peerllm safety check --jsonl [--policy FILE]")
	}
	fs := newFlags("safety check")
	jsonl := fs.Bool("jsonl", false, "read JSON lines with a \"text\" field on stdin, write one verdict per line")
	policy := fs.String("policy", "", "policy file (JSON thresholds; default: built-in policy)")
	aiKind := fs.String("ai", "", "optional AI stage for unsure texts: openai (a /v1/moderations endpoint) or llamaguard (a Llama-Guard model behind /v1/chat/completions); API key from $PEERLLM_MODERATION_KEY")
	aiURL := fs.String("ai-url", "", "AI stage base URL, e.g. https://api.openai.com/v1 or http://127.0.0.1:8000/v1")
	aiModel := fs.String("ai-model", "", "AI stage model name")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if !*jsonl {
		return usagef("safety check needs --jsonl")
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	c, err := loadClassifier(*policy)
	if err != nil {
		return err
	}
	ch := &safety.Checker{Classifier: c}
	key := os.Getenv("PEERLLM_MODERATION_KEY")
	switch *aiKind {
	case "":
	case "openai":
		ch.AI = &safety.OpenAIModerator{BaseURL: *aiURL, APIKey: key, Model: *aiModel}
	case "llamaguard":
		ch.AI = &safety.LlamaGuardModerator{BaseURL: *aiURL, APIKey: key, Model: *aiModel}
	default:
		return usagef("--ai must be openai or llamaguard, got %q", *aiKind)
	}
	if ch.AI != nil && *aiURL == "" {
		return usagef("--ai needs --ai-url")
	}
	var st stageStats
	ch.Observe = st.observe
	err = checkJSONL(ctx, ch, os.Stdin, os.Stdout)
	if ch.AI != nil {
		st.report(os.Stderr)
	}
	return err
}

// stageStats measures each screening stage separately (counts, latency,
// flags, errors; never text).
type stageStats struct {
	n, flagged, errs map[string]int
	total            map[string]time.Duration
}

func (s *stageStats) observe(stage string, d time.Duration, flagged bool, err error) {
	if s.n == nil {
		s.n, s.flagged, s.errs, s.total = map[string]int{}, map[string]int{}, map[string]int{}, map[string]time.Duration{}
	}
	s.n[stage]++
	s.total[stage] += d
	if flagged {
		s.flagged[stage]++
	}
	if err != nil {
		s.errs[stage]++
	}
}

func (s *stageStats) report(w io.Writer) {
	for _, stage := range []string{safety.SourceBuiltin, safety.SourceAI} {
		if n := s.n[stage]; n > 0 {
			fmt.Fprintf(w, "%s stage: %d texts, mean %v, %d flagged, %d errors\n", stage, n, s.total[stage]/time.Duration(n), s.flagged[stage], s.errs[stage])
		}
	}
}

func loadClassifier(policyPath string) (*safety.Classifier, error) {
	p := safety.DefaultPolicy()
	if policyPath != "" {
		var err error
		if p, err = safety.LoadPolicy(policyPath); err != nil {
			return nil, err
		}
	}
	return safety.New(p)
}

// checkResult is the output line of safety check --jsonl.
type checkResult struct {
	Flagged    bool               `json:"flagged"`
	Categories map[string]bool    `json:"categories"`
	Scores     map[string]float64 `json:"scores"`
}

// checkJSONL answers each input line. When the AI stage fails for a line,
// that line gets the built-in verdict (counted as an AI error), so output
// stays aligned with input.
func checkJSONL(ctx context.Context, ch *safety.Checker, in io.Reader, out io.Writer) error {
	br := bufio.NewReaderSize(in, 64<<10)
	bw := bufio.NewWriter(out)
	defer bw.Flush()
	enc := json.NewEncoder(bw)
	for line := 1; ; line++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		b, rerr := readLine(br, maxLineBytes)
		if rerr != nil && !errors.Is(rerr, io.EOF) && b == nil {
			return fmt.Errorf("line %d: %w", line, rerr)
		}
		if len(bytes.TrimSpace(b)) > 0 {
			if !utf8.Valid(b) {
				bw.Flush()
				return fmt.Errorf("line %d: not valid UTF-8", line)
			}
			var req struct {
				Text *string `json:"text"`
			}
			if err := json.Unmarshal(b, &req); err != nil {
				bw.Flush()
				return fmt.Errorf("line %d: not a JSON object: %v", line, shortJSONError(err))
			}
			if req.Text == nil {
				bw.Flush()
				return fmt.Errorf("line %d: no \"text\" field", line)
			}
			v, _ := ch.Check(ctx, *req.Text) // on an AI error v is the built-in verdict
			if err := enc.Encode(checkResult{v.Flagged, v.Categories, v.Scores}); err != nil {
				return err
			}
			if br.Buffered() == 0 {
				// Interactive use: answer each line as soon as it is read.
				if err := bw.Flush(); err != nil {
					return err
				}
			}
		}
		if errors.Is(rerr, io.EOF) {
			return bw.Flush()
		}
		if rerr != nil {
			return rerr
		}
	}
}

// shortJSONError keeps decoder errors to one short line.
func shortJSONError(err error) string {
	s := err.Error()
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}
