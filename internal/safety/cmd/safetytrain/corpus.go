package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"

	"github.com/peerllm/peerllm/internal/safety"
)

// A corpus is the parsed template file internal/safety/data/corpus.txt (its
// header documents the syntax): named slots and labelled templates.
type corpus struct {
	slots map[string][]string
	lines []corpusLine
}

type corpusLine struct {
	n      int // line number, for errors and as the expansion seed
	labels string
	tmpl   string
	count  int
}

func parseCorpus(path string) (*corpus, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c := &corpus{slots: map[string][]string{}}
	last := ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), " \r")
		trim := strings.TrimSpace(line)
		switch {
		case trim == "" || strings.HasPrefix(trim, "#"):
			last = ""
		case strings.HasPrefix(trim, "|") && last != "":
			c.slots[last] = append(c.slots[last], splitAlts(trim[1:])...)
		case strings.HasPrefix(trim, "@"):
			name, body, ok := strings.Cut(trim[1:], "=")
			name = strings.TrimSpace(name)
			if !ok || name == "" || name == "X" {
				return nil, fmt.Errorf("%s:%d: want @name = a | b", path, n)
			}
			if _, dup := c.slots[name]; dup {
				return nil, fmt.Errorf("%s:%d: slot %q defined twice", path, n, name)
			}
			c.slots[name] = splitAlts(body)
			last = name
		default:
			last = ""
			labels, tmpl, ok := strings.Cut(line, "\t")
			if !ok {
				return nil, fmt.Errorf("%s:%d: want labels<TAB>template", path, n)
			}
			cl := corpusLine{n: n, labels: labels, tmpl: tmpl, count: 1}
			if i := strings.LastIndexByte(tmpl, '*'); i >= 0 {
				if k, err := strconv.Atoi(tmpl[i+1:]); err == nil && k > 0 {
					cl.tmpl, cl.count = tmpl[:i], k
				}
			}
			c.lines = append(c.lines, cl)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

// splitAlts splits s at the '|' that are outside brackets and braces.
func splitAlts(s string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[', '{':
			depth++
		case ']', '}':
			depth--
		case '|':
			if depth == 0 {
				out = append(out, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}

// expand draws one expansion of t; bind is the slot {X} stands for.
func (c *corpus) expand(rng *rand.Rand, t, bind string, depth int) (string, error) {
	if depth > 12 {
		return "", fmt.Errorf("slots nest too deep in %q", t)
	}
	var b strings.Builder
	for i := 0; i < len(t); i++ {
		switch t[i] {
		case '{':
			j := strings.IndexByte(t[i:], '}')
			if j < 0 {
				return "", fmt.Errorf("unclosed { in %q", t)
			}
			name, arg, _ := strings.Cut(t[i+1:i+j], ":")
			inner := bind
			if arg != "" {
				inner = arg
			}
			if name == "X" {
				if bind == "" {
					return "", fmt.Errorf("{X} with nothing bound in %q", t)
				}
				name, inner = bind, ""
			}
			alts, ok := c.slots[name]
			if !ok {
				return "", fmt.Errorf("unknown slot %q", name)
			}
			s, err := c.expand(rng, alts[rng.IntN(len(alts))], inner, depth+1)
			if err != nil {
				return "", err
			}
			b.WriteString(s)
			i += j
		case '[':
			d, j := 0, i
			for ; j < len(t); j++ {
				if t[j] == '[' || t[j] == '{' {
					d++
				} else if t[j] == ']' || t[j] == '}' {
					d--
					if d == 0 {
						break
					}
				}
			}
			if j == len(t) {
				return "", fmt.Errorf("unclosed [ in %q", t)
			}
			alts := splitAlts(t[i+1 : j])
			s, err := c.expand(rng, alts[rng.IntN(len(alts))], bind, depth+1)
			if err != nil {
				return "", err
			}
			b.WriteString(s)
			i = j
		default:
			b.WriteByte(t[i])
		}
	}
	return b.String(), nil
}

var tidy = strings.NewReplacer(" ,", ",", " .", ".", " ?", "?", "..", ".", "?.", "?")

// examples expands every line into up to count distinct labelled examples
// (fewer when the template has fewer distinct expansions). Deterministic.
func (c *corpus) examples() ([]safety.Example, error) {
	known := map[string]bool{}
	for _, n := range safety.Categories() {
		known[n] = true
	}
	seen := map[string]bool{}
	var ex []safety.Example
	for _, l := range c.lines {
		e := safety.Example{Labels: map[string]int{}, Source: "corpus", Group: "corpus"}
		if l.labels == "safe" {
			e.Unsafe = 0
		} else {
			e.Unsafe = 1
			for _, name := range strings.Split(l.labels, ",") {
				if !known[name] {
					return nil, fmt.Errorf("corpus line %d: unknown category %q", l.n, name)
				}
				e.Labels[name] = 1
			}
		}
		rng := rand.New(rand.NewPCG(uint64(l.n), 0xc0de))
		got := 0
		for try := 0; got < l.count && try < 30*l.count; try++ {
			s, err := c.expand(rng, l.tmpl, "", 0)
			if err != nil {
				return nil, fmt.Errorf("corpus line %d: %w", l.n, err)
			}
			s = strings.Join(strings.Fields(tidy.Replace(s)), " ")
			if s == "" || seen[s] {
				continue
			}
			seen[s] = true
			got++
			e.Text = s
			ex = append(ex, e)
		}
	}
	return ex, nil
}
