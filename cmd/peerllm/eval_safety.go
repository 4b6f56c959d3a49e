package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/peerllm/peerllm/internal/safety"
)

// runEvalSafety prints precision, recall, F1 and confusion counts per
// category and overall, and the overall confusion matrix, for one or more
// labelled files (--data may repeat): OpenAI moderation-set JSONL,
// {"text","label"} JSONL, or JailbreakBench behaviors CSV.
func runEvalSafety(ctx context.Context, args []string) error {
	fs := newFlags("eval safety")
	var data multiFlag
	fs.Var(&data, "data", "labelled file (JSONL or JailbreakBench CSV); repeatable")
	policy := fs.String("policy", "", "policy file (JSON thresholds; default: built-in policy)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if len(data) == 0 {
		return usagef("usage: peerllm eval safety --data FILE [--data FILE...] [--policy FILE]")
	}
	c, err := loadClassifier(*policy)
	if err != nil {
		return err
	}
	var ex []safety.Example
	for _, f := range data {
		e, err := safety.LoadLabelled(f)
		if err != nil {
			return err
		}
		ex = append(ex, e...)
	}
	if len(ex) == 0 {
		return fmt.Errorf("no labelled examples in %s", strings.Join(data, ", "))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r := safety.Evaluate(c, ex)
	fmt.Printf("safety eval: %d examples from %s\n\n", r.N, strings.Join(data, ", "))
	return r.WriteText(os.Stdout)
}

type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ",") }

func (m *multiFlag) Set(s string) error {
	*m = append(*m, s)
	return nil
}
