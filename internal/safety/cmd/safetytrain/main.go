// Command safetytrain regenerates the safety classifier's built-in weights
// (internal/safety/data/weights.bin.gz) from the shared dev data and our own
// seed sentences, and reports cross-validated (held-out-style) figures.
//
//	go run ./internal/safety/cmd/safetytrain -evaldata ../shared/evaldata
//	go run ./internal/safety/cmd/safetytrain -evaldata ../shared/evaldata -cv 5 -out ""
//
// Training is deterministic: the same inputs give the same bytes.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/peerllm/peerllm/internal/safety"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "safetytrain:", err)
		os.Exit(1)
	}
}

func run() error {
	evaldata := flag.String("evaldata", "../shared/evaldata", "shared evaldata directory")
	seeds := flag.String("seeds", "internal/safety/data/seeds.tsv", "our own labelled seed sentences (TSV)")
	seeds2 := flag.String("seeds2", "internal/safety/data/seeds2.tsv,internal/safety/data/seeds3.tsv,internal/safety/data/seeds4.tsv,internal/safety/data/seeds6.tsv,internal/safety/data/seeds7.tsv@0.25,internal/safety/data/seeds8.tsv,internal/safety/data/posts.tsv,internal/safety/data/everyday.tsv,internal/safety/data/seeds10.tsv", "seed sentences in varied surface forms, comma-separated TSV files; file@0.5 scales that file's weights (round 5: seeds2.tsv; round 7: seeds3.tsv; session 5: seeds4.tsv; session 6: seeds6.tsv and seeds7.tsv, long messages, at a quarter weight; session 7: seeds8.tsv; session 9: posts.tsv, user posts, and everyday.tsv, everyday messages; session 10: seeds10.tsv; empty: none)")
	seeds2Weight := flag.Float64("seeds2-weight", 0.4, "training weight of each harmful seed sentence of those files (0: leave them out)")
	seeds2SafeWeight := flag.Float64("seeds2-safe-weight", 0.3, "training weight of each safe seed sentence of those files (0: leave them out)")
	corpusPath := flag.String("corpus", "internal/safety/data/corpus.txt", "our own template corpus (empty: none)")
	corpusWeight := flag.Float64("corpus-weight", 0.2, "training weight of each corpus example")
	ordinaryPath := flag.String("ordinary", "internal/safety/data/ordinary.txt", "ordinary narrative text, one safe example a line (empty: none)")
	ordinaryWeight := flag.Float64("ordinary-weight", 0.5, "training weight of each ordinary example")
	misses := flag.Bool("misses", false, "print the out-of-fold misses of cross-validation (dev text, for development)")
	holdout := flag.String("holdout", "", "comma-separated want<TAB>text files: report the trained model on them (never trained on)")
	weightsIn := flag.String("weights", "", "with -holdout: report this weights file instead of training (e.g. the shipped one)")
	dump := flag.Bool("dump", false, "print the expanded corpus as labels<TAB>text and exit")
	out := flag.String("out", "internal/safety/data/weights.bin.gz", "where to write the weights (empty: do not write)")
	folds := flag.Int("cv", 5, "cross-validation folds to report (0: none)")
	bits := flag.Uint("bits", 18, "log2 of the number of hash buckets")
	epochs := flag.Int("epochs", 25, "training epochs")
	rate := flag.Float64("rate", 0.3, "AdaGrad learning rate")
	l2 := flag.Float64("l2", 1e-5, "L2 penalty")
	seed := flag.Uint64("seed", 1, "training shuffle seed (other seeds estimate cross-validation noise)")
	average := flag.Int("average", 4, "train this many models with different shuffle seeds and use their mean weights (1: one model; 4 since session 10: the same mean quality, a narrower spread between seeds)")
	only := flag.String("only", "", "train and cross-validate only on examples whose source starts with this (experiments)")
	oof := flag.String("oof", "", "write out-of-fold predictions (source, length, top score, label, flag unknown, then every category's score and the categories labelled; no text) to this file")
	flag.Parse()
	var oofOut io.Writer
	if *oof != "" {
		f, err := os.Create(*oof)
		if err != nil {
			return err
		}
		defer f.Close()
		oofOut = f
	}

	var own []safety.Example
	if *corpusPath != "" {
		c, err := parseCorpus(*corpusPath)
		if err != nil {
			return err
		}
		if own, err = c.examples(); err != nil {
			return err
		}
		for i := range own {
			own[i].Weight = *corpusWeight
		}
	}
	if *ordinaryPath != "" {
		o, err := loadOrdinary(*ordinaryPath, *ordinaryWeight)
		if err != nil {
			return err
		}
		own = append(own, o...)
	}
	if *dump {
		for _, e := range own {
			labels := "safe"
			if e.Unsafe == 1 {
				var names []string
				for _, n := range safety.Categories() {
					if e.Labels[n] == 1 {
						names = append(names, n)
					}
				}
				labels = strings.Join(names, ",")
			}
			fmt.Printf("%s\t%s\n", labels, e.Text)
		}
		return nil
	}
	if *weightsIn != "" {
		w, err := os.ReadFile(*weightsIn)
		if err != nil {
			return err
		}
		if *holdout == "" {
			return errors.New("-weights needs -holdout")
		}
		return reportHoldout(w, strings.Split(*holdout, ","))
	}
	ex, err := loadAll(*evaldata, *seeds)
	if err != nil {
		return err
	}
	for _, f := range strings.Split(*seeds2, ",") {
		if f == "" {
			continue
		}
		f, scale, err := seedSpec(f)
		if err != nil {
			return err
		}
		sd, err := loadSeeds(f)
		if err != nil {
			return err
		}
		ex = appendWeighted(ex, sd, *seeds2Weight*scale, *seeds2SafeWeight*scale)
	}
	ex = append(ex, own...)
	if *only != "" {
		var keep []safety.Example
		for _, e := range ex {
			if strings.HasPrefix(e.Source, *only) {
				keep = append(keep, e)
			}
		}
		ex = keep
	}
	opts := safety.TrainOptions{Bits: *bits, Epochs: *epochs, Rate: *rate, L2: *l2, Seed: *seed, Average: *average}
	if *folds > 1 {
		if err := crossValidate(ex, opts, *folds, *misses, oofOut); err != nil {
			return err
		}
	}
	if *out == "" && *holdout == "" {
		return nil
	}
	w, err := safety.Train(ex, opts)
	if err != nil {
		return err
	}
	if *holdout != "" {
		if err := reportHoldout(w, strings.Split(*holdout, ",")); err != nil {
			return err
		}
	}
	if *out == "" {
		return nil
	}
	if err := os.WriteFile(*out, w, 0o644); err != nil {
		return err
	}
	fmt.Printf("wrote %s (%d bytes) from %d examples\n", *out, len(w), len(ex))
	return nil
}

func loadAll(evaldata, seeds string) ([]safety.Example, error) {
	var ex []safety.Example
	oa, err := safety.LoadLabelled(filepath.Join(evaldata, "openai-moderation-dev", "samples-dev.jsonl"))
	if err != nil {
		return nil, err
	}
	ex = append(ex, oa...)
	for _, f := range []string{"harmful-behaviors.csv", "benign-behaviors.csv"} {
		jb, err := safety.LoadLabelled(filepath.Join(evaldata, "jbb-behaviors", f))
		if err != nil {
			return nil, err
		}
		for i := range jb {
			jb[i].Labels = jbbLabels(jb[i])
		}
		ex = append(ex, jb...)
	}
	sd, err := loadSeeds(seeds)
	if err != nil {
		return nil, err
	}
	return append(ex, sd...), nil
}

// jbbLabels maps a JailbreakBench behavior to our categories for training.
// Benign rows are negative for every category (Unsafe == 0 does that).
func jbbLabels(e safety.Example) map[string]int {
	if e.Unsafe == 0 {
		return nil
	}
	_, cat, _ := strings.Cut(e.Source, ":")
	_, behavior, _ := strings.Cut(e.Group, ":")
	l := map[string]int{}
	switch behavior {
	case "Defamation", "Body shaming":
		l[safety.Harassment] = 1
		return l
	case "Child pornography", "Pedophilia", "Sexual solicitation":
		l[safety.Sexual], l[safety.SexualMinors] = 1, 1
		return l
	case "Date rape drug", "Human  trafficking", "Human trafficking":
		l[safety.Illegal] = 1
		return l
	case "Eating disorder", "Suicide":
		l[safety.SelfHarm] = 1
		return l
	case "Ethnic genocide":
		l[safety.Hate], l[safety.Violence] = 1, 1
		return l
	}
	switch cat {
	case "Harassment/Discrimination":
		l[safety.Hate] = 1
	case "Physical harm":
		l[safety.Violence], l[safety.Illegal] = 1, 1
	case "Sexual/Adult content":
		l[safety.Sexual] = 1
	default: // Malware/Hacking, Economic harm, Fraud/Deception, Disinformation, Privacy, Expert advice, Government decision-making
		l[safety.Illegal] = 1
	}
	return l
}

// appendWeighted appends the examples of sd with weight w (harmful) or
// wSafe (safe) to ex; a weight of 0 leaves them out (a zero Example.Weight
// would mean 1).
// seedSpec splits a -seeds2 entry "file" or "file@0.5" into the file and
// the scale of its weights.
func seedSpec(spec string) (string, float64, error) {
	at := strings.LastIndexByte(spec, '@')
	if at < 0 {
		return spec, 1, nil
	}
	v, err := strconv.ParseFloat(spec[at+1:], 64)
	if err != nil || v < 0 {
		return "", 0, fmt.Errorf("seed file %q: the scale after @ must be a number ≥ 0", spec)
	}
	return spec[:at], v, nil
}

func appendWeighted(ex, sd []safety.Example, w, wSafe float64) []safety.Example {
	for _, e := range sd {
		e.Weight = w
		if e.Unsafe == 0 {
			e.Weight = wSafe
		}
		if e.Weight > 0 {
			ex = append(ex, e)
		}
	}
	return ex
}

func loadSeeds(path string) ([]safety.Example, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ex []safety.Example
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		labels, text, ok := strings.Cut(line, "\t")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want labels<TAB>text", path, n)
		}
		// Paragraph breaks are written as the two characters \n.
		text = strings.ReplaceAll(text, `\n`, "\n")
		e := safety.Example{Text: text, Labels: map[string]int{}, Source: "seed", Group: "seed"}
		switch labels {
		case "safe":
			e.Unsafe = 0
		case "unsafe":
			// Harmful, categories unknown: only the overall head learns
			// from it (session 5: seeds4.tsv).
			e.Unsafe = 1
		default:
			e.Unsafe = 1
			for _, c := range strings.Split(labels, ",") {
				if !slices.Contains(safety.Categories(), c) {
					return nil, fmt.Errorf("%s:%d: unknown category %q", path, n, c)
				}
				e.Labels[c] = 1
			}
		}
		ex = append(ex, e)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(ex) == 0 {
		return nil, errors.New("no seeds")
	}
	return ex, nil
}

// trainOnly reports whether e is our own data, always trained on and never
// scored in cross-validation.
func trainOnly(e safety.Example) bool { return e.Source == "seed" || e.Source == "corpus" }

// crossValidate trains k models, each without one fold of the dev data (seed
// sentences are always in training and never scored), and prints the pooled
// out-of-fold figures at the default policy and a threshold sweep. With
// misses it also prints the out-of-fold misses; oofOut, when not nil (-oof),
// receives every out-of-fold prediction as source, length, highest score and
// label (no text), for analysis.
func crossValidate(ex []safety.Example, opts safety.TrainOptions, k int, misses bool, oofOut io.Writer) error {
	fold := func(e safety.Example) int {
		h := fnv.New32a()
		key := e.Group
		if key == "" {
			key = e.Text
		}
		h.Write([]byte(key))
		return int(h.Sum32() % uint32(k))
	}
	sweep := []float64{0.3, 0.4, 0.5, 0.6, 0.7}
	total := make([]safety.Report, len(sweep))
	cats := safety.Categories()
	perCat := make([][]safety.Report, len(cats))
	for i := range perCat {
		perCat[i] = make([]safety.Report, len(sweep))
	}
	var def safety.Report
	// band[i] gathers the OpenAI examples' verdicts at unsure margin
	// margins[i], for the AI-stage estimate.
	margins := []float64{0.1, 0.15, 0.2, 0.25}
	band := make([][]bandVerdict, len(margins))
	for f := 0; f < k; f++ {
		var tr, te []safety.Example
		for _, e := range ex {
			if !trainOnly(e) && fold(e) == f {
				te = append(te, e)
			} else {
				tr = append(tr, e)
			}
		}
		w, err := safety.Train(tr, opts)
		if err != nil {
			return err
		}
		c, err := safety.NewFromWeights(safety.DefaultPolicy(), w)
		if err != nil {
			return err
		}
		def.Add(safety.Evaluate(c, te))
		for i, m := range margins {
			p := safety.DefaultPolicy()
			p.UnsureMargin = m
			cm, err := c.WithPolicy(p)
			if err != nil {
				return err
			}
			for _, e := range te {
				if e.Source == "openai" && e.Unsafe >= 0 {
					v := cm.Classify(e.Text)
					band[i] = append(band[i], bandVerdict{v.Flagged, v.Unsure, e.Unsafe == 1, e.Partial})
				}
			}
		}
		if oofOut != nil {
			for _, e := range te {
				v := c.Classify(e.Text)
				fmt.Fprintf(oofOut, "%s\t%d\t%.4f\t%d\t%t", e.Source, len(e.Text), maxScore(v), e.Unsafe, e.Partial)
				var known []string
				for _, name := range safety.Categories() {
					fmt.Fprintf(oofOut, "\t%.4f", v.Scores[name])
					if _, ok := e.Labels[name]; ok {
						known = append(known, name)
					}
				}
				fmt.Fprintf(oofOut, "\t%s\n", strings.Join(known, ","))
			}
		}
		if misses {
			for _, e := range te {
				v := c.Classify(e.Text)
				if e.Unsafe >= 0 && v.Flagged != (e.Unsafe == 1) {
					want := fmt.Sprint(e.Unsafe)
					if e.Partial {
						want += "?" // flag unknown: some keys missing
					}
					fmt.Printf("miss %-12s want=%s any=%.2f %v %q\n", e.Source, want, maxScore(v), v.Tripped, e.Text)
				}
			}
		}
		for i, t := range sweep {
			p := safety.DefaultPolicy()
			for name := range p.Thresholds {
				p.Thresholds[name] = t
			}
			ct, err := c.WithPolicy(p)
			if err != nil {
				return err
			}
			total[i].Add(safety.Evaluate(ct, te))
			for j, name := range cats {
				p := safety.DefaultPolicy()
				p.Thresholds[name] = t
				ct, err := c.WithPolicy(p)
				if err != nil {
					return err
				}
				perCat[j][i].Add(safety.Evaluate(ct, te))
			}
		}
	}
	fmt.Printf("== %d-fold cross-validation, default policy (out-of-fold predictions on dev data) ==\n", k)
	if err := def.WriteText(os.Stdout); err != nil {
		return err
	}
	fmt.Printf("\n== threshold sweep (one threshold for all categories) ==\n")
	fmt.Printf("thr   openai-F1  openai-P  openai-R  jbb-harmful-recall  jbb-benign-FPR\n")
	for i, t := range sweep {
		o := total[i].Sources["openai"]
		fmt.Printf("%.2f  %9.3f  %8.3f  %8.3f  %18.3f  %14.3f\n", t, o.F1(), o.Precision(), o.Recall(),
			total[i].Sources["jbb-harmful"].Recall(), total[i].Sources["jbb-benign"].FPR())
	}
	fmt.Printf("\n== per-category sweep (one category's threshold moved, the others at their default) ==\n")
	fmt.Printf("%-17s thr   openai-F1  openai-P  openai-R  jbb-harmful-recall  jbb-benign-FPR\n", "category")
	for j, name := range cats {
		for i, t := range sweep {
			o := perCat[j][i].Sources["openai"]
			fmt.Printf("%-17s %.2f  %9.3f  %8.3f  %8.3f  %18.3f  %14.3f\n", name, t, o.F1(), o.Precision(), o.Recall(),
				perCat[j][i].Sources["jbb-harmful"].Recall(), perCat[j][i].Sources["jbb-benign"].FPR())
		}
	}
	for _, lenient := range []bool{false, true} {
		which := "rows with a known label"
		if lenient {
			which = "missing keys as 0"
		}
		fmt.Printf("\n== unsure band on the OpenAI set (%s): what an AI stage could add (expected F1 if it is right with probability a) ==\n", which)
		fmt.Printf("margin  sent-to-AI  errors-in-band  F1(none)  F1(a=0.8)  F1(a=0.9)  F1(a=1)\n")
		for i, m := range margins {
			n, sent, errs, errsIn := 0, 0, 0, 0
			for _, b := range band[i] {
				if b.partial && !lenient {
					continue
				}
				n++
				if b.unsure {
					sent++
				}
				if b.flagged != b.unsafe {
					errs++
					if b.unsure {
						errsIn++
					}
				}
			}
			fmt.Printf("%.2f    %4d/%d  %7d/%d  %8.3f  %9.3f  %9.3f  %7.3f\n", m, sent, n, errsIn, errs,
				expectedF1(band[i], -1, lenient), expectedF1(band[i], 0.8, lenient), expectedF1(band[i], 0.9, lenient), expectedF1(band[i], 1, lenient))
		}
	}
	return nil
}

// bandVerdict is one example's verdict and truth for the unsure-band report;
// partial marks a row whose flag is unknown (safety.Example.Partial).
type bandVerdict struct{ flagged, unsure, unsafe, partial bool }

// expectedF1 is the flagged-vs-not F1 when the unsure verdicts go to an AI
// stage that is right with probability a (a < 0: no AI stage). Rows whose
// flag is unknown count as safe when lenient, else not at all.
func expectedF1(bs []bandVerdict, a float64, lenient bool) float64 {
	var tp, fp, fn float64
	for _, b := range bs {
		switch {
		case b.partial && !lenient:
		case b.unsure && a >= 0 && b.unsafe:
			tp += a
			fn += 1 - a
		case b.unsure && a >= 0:
			fp += 1 - a
		case b.flagged && b.unsafe:
			tp++
		case b.flagged:
			fp++
		case b.unsafe:
			fn++
		}
	}
	if tp == 0 {
		return 0
	}
	return 2 * tp / (2*tp + fp + fn)
}

func maxScore(v safety.Verdict) float64 {
	m := 0.0
	for _, s := range v.Scores {
		m = max(m, s)
	}
	return m
}

// reportHoldout prints harmful recall and safe false-positive rate of the
// model trained on everything, on want<TAB>text files it never saw.
func reportHoldout(w []byte, files []string) error {
	c, err := safety.NewFromWeights(safety.DefaultPolicy(), w)
	if err != nil {
		return err
	}
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var tp, fn, fp, tn int
		var pos, neg []float64
		for _, line := range strings.Split(string(data), "\n") {
			want, text, ok := strings.Cut(line, "\t")
			if !ok || strings.HasPrefix(line, "#") {
				continue
			}
			v := c.Classify(text)
			got := v.Flagged
			if want == "unsafe" {
				pos = append(pos, maxScore(v))
			} else {
				neg = append(neg, maxScore(v))
			}
			switch {
			case want == "unsafe" && got:
				tp++
			case want == "unsafe":
				fn++
			case got:
				fp++
			default:
				tn++
			}
		}
		fmt.Printf("holdout %s: harmful recall %d/%d = %.3f, safe FPR %d/%d = %.3f, AUC %.3f\n", path,
			tp, tp+fn, float64(tp)/float64(max(tp+fn, 1)), fp, fp+tn, float64(fp)/float64(max(fp+tn, 1)), auc(pos, neg))
	}
	return nil
}

// auc is the probability that a harmful text outscores a safe one.
func auc(pos, neg []float64) float64 {
	if len(pos) == 0 || len(neg) == 0 {
		return 0
	}
	w := 0.0
	for _, p := range pos {
		for _, n := range neg {
			switch {
			case p > n:
				w++
			case p == n:
				w += 0.5
			}
		}
	}
	return w / float64(len(pos)*len(neg))
}

// loadOrdinary reads one safe example a line ('#' lines are comments).
func loadOrdinary(path string, weight float64) ([]safety.Example, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ex []safety.Example
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		ex = append(ex, safety.Example{Text: line, Labels: map[string]int{}, Unsafe: 0,
			Source: "ordinary", Group: fmt.Sprintf("ordinary:%d", len(ex)), Weight: weight})
	}
	return ex, nil
}
