package main

import (
	"fmt"
	"hash/fnv"
	"os"
	"testing"

	"github.com/peerllm/peerllm/internal/safety"
)

func TestDebugErrors(t *testing.T) {
	ex, err := loadAll("/work/shared/evaldata", "../../data/seeds.tsv")
	if err != nil {
		t.Fatal(err)
	}
	var tr, te []safety.Example
	for _, e := range ex {
		h := fnv.New32a()
		k := e.Group
		if k == "" {
			k = e.Text
		}
		h.Write([]byte(k))
		if e.Source != "seed" && h.Sum32()%5 == 0 {
			te = append(te, e)
		} else {
			tr = append(tr, e)
		}
	}
	w, _ := safety.Train(tr, safety.TrainOptions{})
	c, _ := safety.NewFromWeights(safety.DefaultPolicy(), w)
	f, _ := os.Create("/tmp/safety_errors.txt")
	defer f.Close()
	for _, e := range te {
		v := c.Classify(e.Text)
		if (e.Unsafe == 1) != v.Flagged {
			txt := e.Text
			if len(txt) > 300 {
				txt = txt[:300]
			}
			var pos []string
			for k, l := range e.Labels {
				if l == 1 {
					pos = append(pos, k)
				}
			}
			fmt.Fprintf(f, "%s truth=%d pos=%v tripped=%v\n   %q\n", e.Source, e.Unsafe, pos, v.Tripped, txt)
		}
	}
}
