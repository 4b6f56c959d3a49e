package privacy

import (
	"embed"
	"strings"
	"sync"
)

//go:embed data/*.txt
var dataFS embed.FS

// gazetteer holds the embedded word lists. It is built once and read-only.
type gazetteer struct {
	first, last map[string]bool
	common      map[string]bool // frequent words usually written in lower case
	capwords    map[string]bool // frequent capitalised words that are not names
	places      map[string]float64
	placeMax    int // longest place name, in words
}

var (
	gzOnce sync.Once
	gz     *gazetteer
)

func readList(name string) []string {
	b, err := dataFS.ReadFile("data/" + name)
	if err != nil {
		panic("privacy: embedded list missing: " + name) // a build defect, not a runtime condition
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func setOf(words []string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

// loadGazetteer parses the embedded lists on first use.
func loadGazetteer() *gazetteer {
	gzOnce.Do(func() {
		g := &gazetteer{
			first:    setOf(readList("first_names.txt")),
			last:     setOf(readList("surnames.txt")),
			common:   setOf(readList("common_words.txt")),
			capwords: setOf(readList("capwords.txt")),
			places:   map[string]float64{},
		}
		for _, c := range readList("cities.txt") {
			g.places[c] = 0.6
		}
		// Countries and capitals identify nobody, and hiding them would spoil
		// ordinary questions ("museums in Paris"): below the default threshold.
		for _, c := range readList("countries.txt") {
			g.places[c] = 0.4
		}
		for _, c := range readList("capitals.txt") {
			g.places[c] = 0.4
		}
		for p := range g.places {
			if n := strings.Count(p, " ") + 1; n > g.placeMax {
				g.placeMax = n
			}
		}
		gz = g
	})
	return gz
}
