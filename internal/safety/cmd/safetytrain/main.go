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
	"os"
	"path/filepath"
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
	out := flag.String("out", "internal/safety/data/weights.bin.gz", "where to write the weights (empty: do not write)")
	folds := flag.Int("cv", 5, "cross-validation folds to report (0: none)")
	bits := flag.Uint("bits", 18, "log2 of the number of hash buckets")
	epochs := flag.Int("epochs", 25, "training epochs")
	rate := flag.Float64("rate", 0.3, "AdaGrad learning rate")
	l2 := flag.Float64("l2", 1e-5, "L2 penalty")
	only := flag.String("only", "", "train and cross-validate only on examples whose source starts with this (experiments)")
	flag.Parse()

	ex, err := loadAll(*evaldata, *seeds)
	if err != nil {
		return err
	}
	if *only != "" {
		var keep []safety.Example
		for _, e := range ex {
			if strings.HasPrefix(e.Source, *only) {
				keep = append(keep, e)
			}
		}
		ex = keep
	}
	opts := safety.TrainOptions{Bits: *bits, Epochs: *epochs, Rate: *rate, L2: *l2}
	if *folds > 1 {
		if err := crossValidate(ex, opts, *folds); err != nil {
			return err
		}
	}
	if *out == "" {
		return nil
	}
	w, err := safety.Train(ex, opts)
	if err != nil {
		return err
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
		e := safety.Example{Text: text, Labels: map[string]int{}, Source: "seed", Group: "seed"}
		if labels == "safe" {
			e.Unsafe = 0
		} else {
			e.Unsafe = 1
			for _, c := range strings.Split(labels, ",") {
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

// crossValidate trains k models, each without one fold of the dev data (seed
// sentences are always in training and never scored), and prints the pooled
// out-of-fold figures at the default policy and a threshold sweep.
func crossValidate(ex []safety.Example, opts safety.TrainOptions, k int) error {
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
	var def safety.Report
	for f := 0; f < k; f++ {
		var tr, te []safety.Example
		for _, e := range ex {
			if e.Source != "seed" && fold(e) == f {
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
	return nil
}
