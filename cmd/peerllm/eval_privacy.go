package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"text/tabwriter"

	"github.com/peerllm/peerllm/internal/privacy"
)

// runEvalPrivacy measures the privacy scanner on presidio-research's span
// format: precision, recall and F1 per type with exact and overlap
// matching, and the share of ordinary words hidden.
func runEvalPrivacy(ctx context.Context, args []string) error {
	return evalPrivacy(ctx, args, os.Stdout)
}

func evalPrivacy(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("eval privacy")
	data := fs.String("data", "", "labelled data: a JSON array of {full_text, spans[{entity_type, start_position, end_position}]}")
	split := fs.String("split", "all", "which records: all, tune (3/4 by hash of the text) or holdout (the other 1/4)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	var th thresholds
	fs.Var(&th, "min-score", "per-type threshold TYPE=SCORE (repeatable)")
	misses := fs.Int("misses", 0, "also print up to N missed labels and N false detections to stderr (evaluation data only)")
	llmURL := fs.String("llm-url", "", "also run the LLM sanitizer on this operator-trusted OpenAI-compatible API root (e.g. http://10.0.0.5:8000/v1)")
	llmModel := fs.String("llm-model", "", "model name for --llm-url")
	llmKeyEnv := fs.String("llm-key-env", "", "name of the environment variable holding the API key for --llm-url")
	plain := fs.String("plain", "", `instead of --data: JSONL of unlabelled texts ({"text"} or {"prompt"} per line); reports the share of words hidden`)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *plain != "" {
		return evalPlain(*plain, th.m, *asJSON, stdout)
	}
	if *data == "" {
		return usagef("--data FILE (or --plain FILE) is required")
	}
	if *split != "all" && *split != "tune" && *split != "holdout" {
		return usagef("--split must be all, tune or holdout")
	}
	f, err := os.Open(*data) // its error already names the file
	if err != nil {
		return err
	}
	defer f.Close()
	recs, err := privacy.ReadEvalRecords(f)
	if err != nil {
		// The decoder's text names Go types; say what the file should hold.
		return fmt.Errorf("%s: want a JSON array of {\"full_text\", \"spans\"} records", *data)
	}
	var sel []privacy.EvalRecord
	for _, r := range recs {
		if privacy.InSplit(r.FullText, *split) {
			sel = append(sel, r)
		}
	}
	if len(sel) == 0 {
		return fmt.Errorf("%s: no records (split %s)", *data, *split)
	}
	sc, err := privacy.NewScanner(privacy.Config{MinScore: th.m})
	if err != nil {
		return err
	}
	var rep privacy.EvalReport
	if *llmURL != "" {
		l := &privacy.LLMSanitizer{BaseURL: *llmURL, Model: *llmModel}
		if *llmKeyEnv != "" {
			l.APIKey = os.Getenv(*llmKeyEnv)
		}
		rep = privacy.EvaluateWith(sc, sel, func(text string) ([]privacy.Entity, error) { return l.Detect(ctx, text) })
	} else {
		rep = privacy.Evaluate(sc, sel)
	}
	if *misses > 0 {
		printMisses(sc, sel, *misses)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(stdout, "records: %d (split %s)\n", rep.Records, *split)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "type\tgold\tpred\texact P\texact R\texact F1\toverlap P\toverlap R\toverlap F1\thidden R\t")
	row := func(t privacy.TypeScore) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t\n", t.Type, t.Gold, t.Predicted,
			t.ExactP, t.ExactR, t.ExactF1, t.OverlapP, t.OverlapR, t.OverlapF1, t.HiddenR)
	}
	for _, t := range rep.Types {
		row(t)
	}
	row(rep.Overall)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ordinary words hidden: %d of %d (%.2f%%)\n", rep.OrdinaryHidden, rep.OrdinaryWords, 100*rep.OrdinaryShare)
	if *llmURL != "" {
		fmt.Fprintf(stdout, "sanitizer failures (scored on the scanner alone): %d\n", rep.SecondFailures)
	}
	return nil
}

func printMisses(sc *privacy.Scanner, recs []privacy.EvalRecord, n int) {
	missed, wrong := 0, 0
	for _, r := range recs {
		ents := sc.Scan(r.FullText)
		for _, g := range r.Spans {
			t, ok := privacy.EvalTypeMap[g.EntityType]
			if !ok {
				continue
			}
			hit := false
			for _, e := range ents {
				if e.Type == t && e.Start < g.End && g.Start < e.End {
					hit = true
				}
			}
			if !hit && missed < n {
				missed++
				fmt.Fprintf(os.Stderr, "MISS %s %q in %q\n", t, g.Value, r.FullText)
			}
		}
		for _, e := range ents {
			hit := false
			for _, g := range r.Spans {
				if e.Start < g.End && g.Start < e.End {
					hit = true
				}
			}
			if !hit && wrong < n {
				wrong++
				fmt.Fprintf(os.Stderr, "FALSE %s %q (%.2f) in %q\n", e.Type, e.Text, e.Score, r.FullText)
			}
		}
	}
}

// evalPlain reports how much of unlabelled text the scanner hides.
func evalPlain(path string, min map[string]float64, asJSON bool, stdout io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open data: %w", err)
	}
	defer f.Close()
	var texts []string
	r := bufio.NewScanner(f)
	r.Buffer(make([]byte, 1<<20), 64<<20)
	for line := 1; r.Scan(); line++ {
		if len(bytes.TrimSpace(r.Bytes())) == 0 {
			continue
		}
		var rec struct {
			Text   *string `json:"text"`
			Prompt *string `json:"prompt"`
		}
		if err := json.Unmarshal(r.Bytes(), &rec); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		switch {
		case rec.Text != nil:
			texts = append(texts, *rec.Text)
		case rec.Prompt != nil:
			texts = append(texts, *rec.Prompt)
		default:
			return fmt.Errorf("line %d: want a \"text\" or \"prompt\" string", line)
		}
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("read data: %w", err)
	}
	sc, err := privacy.NewScanner(privacy.Config{MinScore: min})
	if err != nil {
		return err
	}
	rep := privacy.EvaluatePlain(sc, texts)
	if asJSON {
		return json.NewEncoder(stdout).Encode(rep)
	}
	fmt.Fprintf(stdout, "texts: %d, words: %d, hidden: %d (%.2f%%)\n", rep.Texts, rep.Words, rep.Hidden, 100*rep.Share)
	types := make([]string, 0, len(rep.ByType))
	for t := range rep.ByType {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		fmt.Fprintf(stdout, "  %-15s %d\n", t, rep.ByType[t])
	}
	return nil
}
