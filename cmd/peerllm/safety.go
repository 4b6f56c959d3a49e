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

	"github.com/peerllm/peerllm/internal/safety"
)

// runSafety runs "safety check --jsonl": one JSON object with a "text" field
// per stdin line in, one {"flagged","categories","scores"} line per input
// out, in the same order. Blank lines are skipped. A malformed line stops the
// run with an error naming the line (exit 1); every line before it has been
// answered and flushed, so output never loses its alignment with input.
func runSafety(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "check" {
		return usagef("usage: peerllm safety check --jsonl [--policy FILE]")
	}
	fs := newFlags("safety check")
	jsonl := fs.Bool("jsonl", false, "read JSON lines with a \"text\" field on stdin, write one verdict per line")
	policy := fs.String("policy", "", "policy file (JSON thresholds; default: built-in policy)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if !*jsonl {
		return usagef("safety check needs --jsonl")
	}
	c, err := loadClassifier(*policy)
	if err != nil {
		return err
	}
	return checkJSONL(ctx, c, os.Stdin, os.Stdout)
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

func checkJSONL(ctx context.Context, c *safety.Classifier, in io.Reader, out io.Writer) error {
	br := bufio.NewReaderSize(in, 64<<10)
	bw := bufio.NewWriter(out)
	defer bw.Flush()
	enc := json.NewEncoder(bw)
	for line := 1; ; line++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		b, rerr := br.ReadBytes('\n')
		if len(bytes.TrimSpace(b)) > 0 {
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
			v := c.Classify(*req.Text)
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
