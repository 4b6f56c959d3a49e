package safety

import (
	"errors"
	"math"
	"math/rand/v2"
)

// Example is one labelled text, for training and evaluation.
type Example struct {
	Text string
	// Labels maps a category to 0 or 1; a missing category is unknown (not
	// 0), as in OpenAI's moderation set.
	Labels map[string]int
	// Unsafe is the overall truth: 1 unsafe, 0 safe, -1 unknown. A safe
	// example counts as negative for every category when training.
	Unsafe int
	// Partial marks a row of OpenAI's moderation set whose known keys are
	// all 0 but some keys are missing (Unsafe is 0). Whether it should be
	// flagged is unknown: a missing key may be 1. Training counts it as safe
	// (such rows are almost all harmless web text: 5 of the dev set's 344
	// rows labelled only for HR, SH, V and V2 have a 1); Evaluate leaves it
	// out of the flagged-vs-not figures and reports it in Report.Lenient.
	Partial bool
	// Group keeps related examples (matched pairs) in the same
	// cross-validation fold.
	Group string
	// Source names where the example came from, for reports.
	Source string
	// Weight scales the example's pull in training; 0 means 1.
	Weight float64
}

// TrainOptions tunes Train. Zero fields take the documented defaults.
type TrainOptions struct {
	Bits   uint    // hash buckets = 2^Bits; default 18
	Epochs int     // passes over the data; default 25
	Rate   float64 // AdaGrad learning rate; default 0.3
	L2     float64 // L2 penalty per update; default 1e-5
	Seed   uint64  // shuffle seed; default 1
	// Average trains this many models with the shuffle seeds Seed,
	// Seed+2^32, Seed+2·2^32, … and averages their weights (still one
	// linear model, so no inference cost); default 1. It narrows the
	// spread between seeds.
	Average int
}

// Train fits one logistic-regression head per model category on ex and
// returns the weights in the format New embeds. It is deterministic for a
// given ex and options.
func Train(ex []Example, o TrainOptions) ([]byte, error) {
	m, err := train(ex, o)
	if err != nil {
		return nil, err
	}
	return m.marshal()
}

// ruleL2 scales the L2 penalty for rule features: there are few of them and
// they carry general signals, so they may grow larger than n-gram weights.
const ruleL2 = 0.01

func train(ex []Example, o TrainOptions) (*model, error) {
	if len(ex) == 0 {
		return nil, errors.New("train: no examples")
	}
	if o.Bits == 0 {
		o.Bits = defaultBits
	}
	if o.Epochs == 0 {
		o.Epochs = 25
	}
	if o.Rate == 0 {
		o.Rate = 0.3
	}
	if o.L2 == 0 {
		o.L2 = 1e-5
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	m := newModel(o.Bits)
	lex := compileLexicon()
	feats := make([][]feature, len(ex))
	var s scratch
	for i, e := range ex {
		normalize(&s.d, e.Text)
		s.ents = scan(lex, &s.d, &s.rs, s.ents)
		s.fs = featurize(s.fs, &s.d, &s.rs, m.mask, true)
		feats[i] = append([]feature(nil), s.fs...)
	}
	if o.Average < 1 {
		o.Average = 1
	}
	for r := range o.Average {
		fitHeads(m, ex, feats, o, o.Seed+uint64(r)<<32, 1/float64(o.Average))
	}
	return m, nil
}

// fitHeads trains every head with one shuffle seed and adds share times
// its weights to m.
func fitHeads(m *model, ex []Example, feats [][]feature, o TrainOptions, seed uint64, share float64) {
	rng := rand.New(rand.NewPCG(seed, 0x5afe))
	for h, name := range heads {
		var idx []int
		var y []float64
		pos := 0
		for i, e := range ex {
			l, ok := e.Labels[name]
			if name == anyHead {
				l, ok = e.Unsafe, e.Unsafe >= 0
			}
			if !ok {
				if e.Unsafe != 0 {
					continue // unknown for this head
				}
				l = 0
			}
			idx = append(idx, i)
			y = append(y, float64(l))
			pos += l
		}
		neg := len(idx) - pos
		if pos == 0 || neg == 0 {
			m.bias[h] += float32(-4 * share)
			continue
		}
		// Balance the classes, but cap the up-weighting of rare positives.
		wPos := math.Min(float64(neg)/float64(pos), 8)
		w := make([]float64, 1<<o.Bits)
		g2 := make([]float64, 1<<o.Bits)
		bias, gb := math.Log(float64(pos)/float64(neg)), 0.0
		order := make([]int, len(idx))
		for i := range order {
			order[i] = i
		}
		for ep := 0; ep < o.Epochs; ep++ {
			rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
			for _, k := range order {
				fs := feats[idx[k]]
				z := bias // the fixed priors are added at inference only
				for _, f := range fs {
					z += float64(f.val) * w[f.idx]
				}
				p := sigmoid(z)
				g := p - y[k]
				if y[k] == 1 {
					g *= wPos
				}
				if ew := ex[idx[k]].Weight; ew > 0 {
					g *= ew
				}
				gb += g * g
				bias -= o.Rate * g / math.Sqrt(gb+1e-8)
				for _, f := range fs {
					l2 := o.L2
					if f.rule {
						l2 *= ruleL2
					}
					gi := g*float64(f.val) + l2*w[f.idx]
					g2[f.idx] += gi * gi
					w[f.idx] -= o.Rate * gi / math.Sqrt(g2[f.idx]+1e-8)
				}
			}
		}
		m.bias[h] += float32(bias * share)
		for b, x := range w {
			m.w[b*numHeads+h] += float32(x * share)
		}
	}
}
