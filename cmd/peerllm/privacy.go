package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/peerllm/peerllm/internal/privacy"
)

// runPrivacy dispatches "privacy scan".
func runPrivacy(ctx context.Context, args []string) error {
	if len(args) > 0 && isHelp(args[0]) {
		return printHelp("usage: peerllm privacy scan --jsonl [--mode surrogates|placeholders] [--min-score TYPE=SCORE]")
	}
	if len(args) == 0 || args[0] != "scan" {
		return usagef("usage: peerllm privacy scan --jsonl [--mode surrogates|placeholders] [--min-score TYPE=SCORE]")
	}
	return runPrivacyScan(ctx, args[1:], os.Stdin, os.Stdout)
}

// thresholds is a repeatable TYPE=SCORE flag.
type thresholds struct{ m map[string]float64 }

func (t *thresholds) String() string { return "" }

func (t *thresholds) Set(v string) error {
	typ, num, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("want TYPE=SCORE, got %q", v)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return fmt.Errorf("bad score in %q", v)
	}
	if t.m == nil {
		t.m = map[string]float64{}
	}
	t.m[strings.ToUpper(typ)] = f
	return nil
}

type scanIn struct {
	Text *string `json:"text"`
}

type scanOut struct {
	Entities   []privacy.Entity `json:"entities"`
	Anonymized string           `json:"anonymized"`
}

// runPrivacyScan reads {"text"} lines and writes one {"entities",
// "anonymized"} line for each. Every line is its own request: stand-ins are
// consistent within a line, not across lines.
func runPrivacyScan(ctx context.Context, args []string, in io.Reader, out io.Writer) error {
	fs := newFlags("privacy scan")
	jsonl := fs.Bool("jsonl", false, `read {"text"} lines on stdin, write {"entities","anonymized"} lines (required)`)
	mode := fs.String("mode", "surrogates", "stand-ins: surrogates or placeholders")
	var th thresholds
	fs.Var(&th, "min-score", "per-type threshold TYPE=SCORE, repeatable (default "+strconv.FormatFloat(privacy.DefaultMinScore, 'f', -1, 64)+" for every type)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if !*jsonl {
		return usagef("--jsonl is required")
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	m, err := privacy.ParseMode(*mode)
	if err != nil {
		return usagef("%v", err)
	}
	sc, err := privacy.NewScanner(privacy.Config{Mode: m, MinScore: th.m})
	if err != nil {
		return usagef("%v", err)
	}
	r := bufio.NewReader(in)
	w := bufio.NewWriter(out)
	defer w.Flush()
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for line := 1; ; line++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		b, rerr := readLine(r, maxLineBytes)
		if rerr != nil && !errors.Is(rerr, io.EOF) && b == nil {
			return fmt.Errorf("line %d: %w", line, rerr)
		}
		if len(strings.TrimSpace(string(b))) > 0 {
			if !utf8.Valid(b) {
				return fmt.Errorf("line %d: not valid UTF-8", line)
			}
			var req scanIn
			if err := json.Unmarshal(b, &req); err != nil || req.Text == nil {
				return fmt.Errorf("line %d: want a JSON object with a \"text\" string", line)
			}
			ents := sc.Scan(*req.Text)
			if ents == nil {
				ents = []privacy.Entity{}
			}
			anon := sc.NewSession().Anonymize(*req.Text)
			if err := enc.Encode(scanOut{Entities: ents, Anonymized: anon}); err != nil {
				return fmt.Errorf("write: %w", err)
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return fmt.Errorf("read stdin: %w", rerr)
		}
	}
}
