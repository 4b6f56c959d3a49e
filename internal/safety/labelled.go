package safety

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
)

// LoadLabelled reads a labelled file for evaluation or training:
//   - JSONL in OpenAI's moderation-set schema: {"prompt": str, "S"|"H"|"V"|
//     "HR"|"SH"|"S3"|"H2"|"V2": 0|1}; a missing key means unknown;
//   - JSONL {"text": str, "label": "safe"|"unsafe"} (optionally
//     "categories": {name: 0|1} with our category names);
//   - a JailbreakBench behaviors CSV (columns goal, category, ...): the file
//     name decides the label, "harmful" → unsafe, "benign" → safe.
//
// Blank JSONL lines are skipped; any other malformed line is an error naming
// its line number.
func LoadLabelled(path string) ([]Example, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if strings.EqualFold(filepath.Ext(path), ".csv") {
		return loadJBB(f, filepath.Base(path))
	}
	return loadJSONL(f, filepath.Base(path))
}

func loadJBB(r io.Reader, name string) ([]Example, error) {
	unsafe := -1
	switch low := strings.ToLower(name); {
	case strings.Contains(low, "harmful"):
		unsafe = 1
	case strings.Contains(low, "benign"):
		unsafe = 0
	}
	if unsafe < 0 {
		return nil, fmt.Errorf("%s: cannot tell the label from the file name (want \"harmful\" or \"benign\" in it)", name)
	}
	rows, err := csv.NewReader(r).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%s: empty", name)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[strings.ToLower(strings.TrimSpace(h))] = i
	}
	gi, ok := col["goal"]
	if !ok {
		return nil, fmt.Errorf("%s: no goal column", name)
	}
	src := "jbb-benign"
	if unsafe == 1 {
		src = "jbb-harmful"
	}
	var out []Example
	for n, row := range rows[1:] {
		if gi >= len(row) {
			return nil, fmt.Errorf("%s: row %d: too few columns", name, n+2)
		}
		e := Example{Text: row[gi], Unsafe: unsafe, Source: src, Group: fmt.Sprintf("jbb-%d", n)}
		if i, ok := col["index"]; ok && i < len(row) {
			e.Group = "jbb-" + row[i]
		}
		if i, ok := col["category"]; ok && i < len(row) {
			e.Labels = map[string]int{} // categories unknown: JBB's own taxonomy
			e.Source += ":" + row[i]
		}
		if i, ok := col["behavior"]; ok && i < len(row) {
			e.Group += ":" + row[i]
		}
		out = append(out, e)
	}
	return out, nil
}

func loadJSONL(r io.Reader, name string) ([]Example, error) {
	br := bufio.NewReader(r)
	var out []Example
	for line := 1; ; line++ {
		b, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(b)) > 0 {
			e, perr := parseLabelled(b)
			if perr != nil {
				return nil, fmt.Errorf("%s: line %d: %w", name, line, perr)
			}
			out = append(out, e)
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
}

func parseLabelled(b []byte) (Example, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return Example{}, fmt.Errorf("not a JSON object: %w", err)
	}
	if p, ok := m["prompt"]; ok {
		e := Example{Labels: map[string]int{}, Unsafe: -1, Source: "openai"}
		if err := json.Unmarshal(p, &e.Text); err != nil {
			return Example{}, fmt.Errorf("prompt: %w", err)
		}
		for k, cat := range OpenAIKeys {
			raw, ok := m[k]
			if !ok {
				continue
			}
			var v int
			if err := json.Unmarshal(raw, &v); err != nil || (v != 0 && v != 1) {
				return Example{}, fmt.Errorf("label %s must be 0 or 1", k)
			}
			e.Labels[cat] = v
			e.Unsafe = max(e.Unsafe, v)
		}
		e.Partial = e.Unsafe == 0 && len(e.Labels) < len(OpenAIKeys)
		return e, nil
	}
	var t struct {
		Text       *string        `json:"text"`
		Label      string         `json:"label"`
		Categories map[string]int `json:"categories"`
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return Example{}, err
	}
	if t.Text == nil {
		return Example{}, fmt.Errorf(`want a "prompt" or a "text" field`)
	}
	e := Example{Text: *t.Text, Labels: map[string]int{}, Source: "labelled"}
	switch t.Label {
	case "unsafe":
		e.Unsafe = 1
	case "safe":
		e.Unsafe = 0
	default:
		return Example{}, fmt.Errorf(`label must be "safe" or "unsafe", got %q`, t.Label)
	}
	for k, v := range t.Categories {
		if !slices.Contains(Categories(), k) || (v != 0 && v != 1) {
			return Example{}, fmt.Errorf("bad category label %q: %d", k, v)
		}
		e.Labels[k] = v
	}
	return e, nil
}

// Confusion counts binary outcomes.
type Confusion struct{ TP, FP, FN, TN int }

// Add returns the sum of two confusions.
func (c Confusion) Add(o Confusion) Confusion {
	return Confusion{c.TP + o.TP, c.FP + o.FP, c.FN + o.FN, c.TN + o.TN}
}

func (c *Confusion) count(truth, pred bool) {
	switch {
	case truth && pred:
		c.TP++
	case truth:
		c.FN++
	case pred:
		c.FP++
	default:
		c.TN++
	}
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Precision is TP/(TP+FP), 0 when nothing was predicted positive.
func (c Confusion) Precision() float64 { return ratio(c.TP, c.TP+c.FP) }

// Recall is TP/(TP+FN), 0 when there are no positives.
func (c Confusion) Recall() float64 { return ratio(c.TP, c.TP+c.FN) }

// FPR is FP/(FP+TN), the share of safe texts flagged.
func (c Confusion) FPR() float64 { return ratio(c.FP, c.FP+c.TN) }

// F1 is the harmonic mean of precision and recall.
func (c Confusion) F1() float64 {
	p, r := c.Precision(), c.Recall()
	if p+r == 0 {
		return 0
	}
	return 2 * p * r / (p + r)
}

// Report is the outcome of Evaluate.
type Report struct {
	N          int                  // examples
	Overall    Confusion            // flagged vs not, on examples with a known overall label
	Categories map[string]Confusion // per category, on examples where it is known
	Sources    map[string]Confusion // flagged vs not per Source (e.g. jbb-benign)
	// Lenient and LenientSources are Overall and Sources with the partially
	// labelled rows (Example.Partial) counted as safe, the reading that
	// takes a missing key for 0. Unknown is how many such rows there were.
	Lenient        Confusion
	LenientSources map[string]Confusion
	Unknown        int
	// Keyed is a third reading between those two: a partially labelled
	// row counts as safe, and as flagged only when a category it carries a
	// key for tripped (a sexual verdict on a row labelled only for
	// harassment and violence is neither right nor wrong, so it is not
	// counted as flagged).
	Keyed        Confusion
	KeyedSources map[string]Confusion
}

// Add merges o into r (for cross-validation folds).
func (r *Report) Add(o Report) {
	r.N += o.N
	r.Unknown += o.Unknown
	r.Overall = r.Overall.Add(o.Overall)
	r.Lenient = r.Lenient.Add(o.Lenient)
	r.Keyed = r.Keyed.Add(o.Keyed)
	if r.Categories == nil {
		r.Categories = map[string]Confusion{}
		r.Sources = map[string]Confusion{}
		r.LenientSources = map[string]Confusion{}
		r.KeyedSources = map[string]Confusion{}
	}
	for k, v := range o.Categories {
		r.Categories[k] = r.Categories[k].Add(v)
	}
	for k, v := range o.Sources {
		r.Sources[k] = r.Sources[k].Add(v)
	}
	for k, v := range o.LenientSources {
		r.LenientSources[k] = r.LenientSources[k].Add(v)
	}
	for k, v := range o.KeyedSources {
		r.KeyedSources[k] = r.KeyedSources[k].Add(v)
	}
}

// Evaluate classifies every example and counts the outcomes.
func Evaluate(c *Classifier, ex []Example) Report {
	r := Report{N: len(ex), Categories: map[string]Confusion{}, Sources: map[string]Confusion{},
		LenientSources: map[string]Confusion{}, KeyedSources: map[string]Confusion{}}
	for _, e := range ex {
		v := c.Classify(e.Text)
		for k, l := range e.Labels {
			cf := r.Categories[k]
			cf.count(l == 1, v.Categories[k])
			r.Categories[k] = cf
		}
		if e.Unsafe < 0 {
			continue
		}
		src := e.Source
		if i := strings.IndexByte(src, ':'); i >= 0 {
			src = src[:i]
		}
		r.Lenient.count(e.Unsafe == 1, v.Flagged)
		cf := r.LenientSources[src]
		cf.count(e.Unsafe == 1, v.Flagged)
		r.LenientSources[src] = cf
		keyed := v.Flagged
		if e.Partial {
			keyed = trippedKeyed(v, e.Labels)
		}
		r.Keyed.count(e.Unsafe == 1, keyed)
		cf = r.KeyedSources[src]
		cf.count(e.Unsafe == 1, keyed)
		r.KeyedSources[src] = cf
		if e.Partial {
			r.Unknown++
			continue
		}
		r.Overall.count(e.Unsafe == 1, v.Flagged)
		cf = r.Sources[src]
		cf.count(e.Unsafe == 1, v.Flagged)
		r.Sources[src] = cf
	}
	return r
}

// trippedKeyed reports whether v tripped a category that labels carries, or
// a sub-category of one (self-harm/intent under self-harm).
func trippedKeyed(v Verdict, labels map[string]int) bool {
	for _, name := range v.Tripped {
		if _, ok := labels[name]; ok {
			return true
		}
		if i := strings.IndexByte(name, '/'); i >= 0 {
			if _, ok := labels[name[:i]]; ok {
				return true
			}
		}
	}
	return false
}

// WriteText prints the report: precision, recall, F1 and the confusion
// counts per category and overall, then the overall confusion matrix.
func (r Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "category\tprecision\trecall\tF1\tTP\tFP\tFN\tTN\t\n")
	row := func(name string, c Confusion) {
		fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.3f\t%d\t%d\t%d\t%d\t\n", name, c.Precision(), c.Recall(), c.F1(), c.TP, c.FP, c.FN, c.TN)
	}
	for _, name := range Categories() {
		if c, ok := r.Categories[name]; ok {
			row(name, c)
		}
	}
	row("overall", r.Overall)
	if r.Unknown > 0 {
		row("overall, missing keys as 0", r.Lenient)
		row("overall, labelled keys only", r.Keyed)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.Unknown > 0 {
		fmt.Fprintf(w, "\n%d rows have some keys missing and none at 1, so whether they should be flagged is\n"+
			"unknown: \"overall\" leaves them out; \"missing keys as 0\" counts them as safe;\n"+
			"\"labelled keys only\" counts them as safe and as flagged only when a category they\n"+
			"carry a key for tripped.\n", r.Unknown)
	}
	names := make([]string, 0, len(r.LenientSources))
	for k := range r.Sources {
		names = append(names, k)
	}
	for k := range r.LenientSources {
		if _, ok := r.Sources[k]; !ok {
			names = append(names, k)
		}
	}
	if len(names) > 1 {
		fmt.Fprintf(w, "\nby source (flagged vs not):\n")
		slices.Sort(names)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "source\tprecision\trecall\tF1\tFPR\tTP\tFP\tFN\tTN\t\n")
		src := func(name string, c Confusion) {
			fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.3f\t%.3f\t%d\t%d\t%d\t%d\t\n", name, c.Precision(), c.Recall(), c.F1(), c.FPR(), c.TP, c.FP, c.FN, c.TN)
		}
		for _, k := range names {
			src(k, r.Sources[k])
			if l := r.LenientSources[k]; l != r.Sources[k] {
				src(k+", missing keys as 0", l)
				src(k+", labelled keys only", r.KeyedSources[k])
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	matrix := func(title string, o Confusion) {
		fmt.Fprintf(w, "\nconfusion matrix (%s, %d examples):\n", title, o.TP+o.FP+o.FN+o.TN)
		fmt.Fprintf(w, "                 predicted unsafe  predicted safe\n")
		fmt.Fprintf(w, "  actual unsafe  %16d  %14d\n", o.TP, o.FN)
		fmt.Fprintf(w, "  actual safe    %16d  %14d\n", o.FP, o.TN)
	}
	matrix("overall, examples with a known label", r.Overall)
	if r.Unknown > 0 {
		matrix("overall, missing keys as 0", r.Lenient)
	}
	return nil
}
