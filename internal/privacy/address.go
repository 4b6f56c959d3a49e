package privacy

import (
	"strings"
	"unicode/utf8"
)

// Street addresses: a house number next to a street name that carries a
// street word (English "Street" after the name, Romance "Via"/"Rue"/"Calle"
// before it, Germanic and Nordic compounds such as "-straße", "-katu",
// "-gatan"), then optional unit, city, region, country and postcode lines.

var streetAfter = setOf(strings.Fields(`Street St St. Avenue Ave Ave. Road Rd Rd. Boulevard Blvd Blvd. Lane Ln Drive Dr Dr. Way
	Court Ct Place Pl Square Sq Terrace Ter Parkway Pkwy Highway Hwy Circle Cir Trail Trl Row Crescent Close Gardens
	Hill Hills Park Walk Mews Grove Alley Bridge Brook Brooks Bypass Camp Canyon Cape Causeway Center Centre Cliff
	Cliffs Common Corner Corners Course Courts Cove Coves Creek Crest Crossing Crossroad Curve Dale Dam Divide Drives
	Estate Estates Expressway Extension Falls Ferry Field Fields Flat Flats Ford Forest Forge Fork Forks Fort Freeway
	Garden Gateway Glen Glens Green Greens Groves Harbor Harbors Haven Heights Hollow Inlet Island Islands Isle
	Junction Key Keys Knoll Knolls Lake Lakes Landing Light Lights Loaf Lock Locks Lodge Loop Mall Manor Manors
	Meadow Meadows Mill Mills Mission Motorway Mount Mountain Mountains Neck Orchard Oval Overpass Pass Passage Path
	Pike Pine Pines Plain Plains Plaza Point Points Port Ports Prairie Radial Ramp Ranch Rapid Rapids Rest Ridge
	Ridges River Route Run Shoal Shoals Shore Shores Skyway Spring Springs Spur Spurs Station Stravenue Stream
	Summit Throughway Trace Track Trafficway Tunnel Turnpike Underpass Union Unions Valley Valleys Via Viaduct View
	Views Village Villages Ville Vista Walks Wall Ways Well Wells Gate End Drove Mead Chase Yard Wynd Parade Vale
	Brae Grange Approach Paddock Lea Circuit Esplanade Promenade Quay Wharf Embankment Strasse Straße Str Gasse
	Weg Platz Allee Gata Gatan Vej Katu Straat Laan Terrasse Vei Veien Gate Plass Gade Vej`))

var streetBefore = setOf(strings.Fields(`Av Av. Avda. Via Viale Vicolo Piazza Piazzale Corso Largo Strada Contrada Rue Avenue Boulevard Chemin
	Allée Impasse Place Quai Route Cours Calle Avenida Avda Carrer Camino Paseo Plaza Ronda Travesía Rua Rúa Praça
	Travessa Estrada Largo Ulica ul. Aleja Al. Plac Utca Strada Bulevardul Calea Odos Rruga Sokak Cadde Caddesi Ulitsa
	Praia Alameda Rambla Carretera Vía Piazzetta Salita Borgo Lungomare Rampa Avinguda Passeig Plaça Ruelle Sentier`))

var streetCompound = []string{"straße", "strasse", "str.", "weg", "gasse", "platz", "allee", "ring", "damm", "ufer", "steig",
	"katu", "tie", "kuja", "polku", "kaari", "rinne", "gatan", "vägen", "gränd", "stigen", "vej", "gade", "vei", "veien",
	"gata", "laan", "straat", "plein", "gracht", "kade", "dreef", "utca", "ulica", "stræde", "torg", "torget", "väg",
	"brink", "singel", "road", "street"}

// lowerStreet are street words that mark an address even in lower case
// ("12 main street"); most English street words ("views", "points") do not.
var lowerStreet = setOf(strings.Fields(`street st avenue ave road rd lane ln drive boulevard blvd terrace terrasse
	straße strasse gasse weg vej vei veien gata gatan rue via calle avenida rua rúa`))

// euroAfter are street words that follow the name and precede the number
// ("Villacher Strasse 89"); English words in that position ("Saints Row 2")
// are rarely addresses.
var euroAfter = setOf(strings.Fields(`Strasse Straße Str Gasse Weg Platz Allee Gata Gatan Vej Katu Straat Laan Terrasse
	Vei Veien Gate Plass Gade Ulica Utca`))

// streetAbbrev are lower-case street words written after the name: Hungarian
// "u." (utca), Polish "ul.", Greek and Romanian "str".
var streetAbbrev = setOf(strings.Fields(`u ul str utca ulica`))

var unitWords = setOf(strings.Fields(`Apt Apt. Apartment Suite Ste Unit Flat Floor Fl Room Rm Bldg Building No No. Nr Nr. PO Box`))

var addressBefore = []string{"address is", "address:", "address", "live at", "lives at", "living at", "located at", "moved to",
	"ship to", "deliver to", "send it to", "mail to", "at", "on", "to", "is"}

func isStreetCompound(w string) bool {
	lw := strings.ToLower(w)
	for _, s := range streetCompound {
		if strings.HasSuffix(lw, s) && len(lw) > len(s)+2 {
			return true
		}
	}
	return false
}

func isHouseNumber(t tok) bool {
	if !t.num || len(t.w) > 6 {
		return false
	}
	letters := 0
	for _, r := range t.w {
		if r < '0' || r > '9' {
			letters++
		}
	}
	return letters <= 1
}

func adjacent(t tok) bool { return t.gap == " " || t.gap == ", " || t.gap == "," }

// scanAddresses finds street addresses in the token stream.
func (g *gazetteer) scanAddresses(text string, toks []tok, out []span) []span {
	for i := 0; i < len(toks); i++ {
		start, streetEnd, score := -1, -1, 0.0
		switch {
		case isHouseNumber(toks[i]):
			// "12 Bond Street", "143 31 rue de la Hulotais", "6750 Koskikatu 25".
			j := i + 1
			if j < len(toks) && isHouseNumber(toks[j]) && toks[j].gap == " " {
				j++
			}
			k, found := j, false
			for k < len(toks) && k-j < 6 && toks[k].gap == " " && (toks[k].cap || toks[k].upper || particles[strings.ToLower(toks[k].w)] ||
				lowerStreet[toks[k].w] || streetAbbrev[toks[k].w]) {
				w := toks[k].w
				if (toks[k].cap || toks[k].upper) && (streetAfter[capFirst(w)] || streetBefore[capFirst(w)]) || isStreetCompound(w) || streetAbbrev[w] || lowerStreet[w] {
					found = true
				}
				k++
				if found && streetAfter[w] {
					break
				}
			}
			if !found && k > j && k-j <= 4 && k < len(toks) && isHouseNumber(toks[k]) && toks[k].gap == " " && !anyCommon(g, toks[j:k]) &&
				len(toks[i].w) >= 3 && allCap(toks[j:k]) {
				// "20789 Allika 46": a number, a name, a number.
				found = true
				score = -0.1
			}
			if found && k > j {
				start, streetEnd, score = toks[i].s, toks[k-1].e, 0.85+score
				// A trailing house number after the street name ("Koskikatu 25").
				if k < len(toks) && isHouseNumber(toks[k]) && (toks[k].gap == " " || (toks[k].gap == ". " && streetAbbrev[toks[k-1].w])) {
					streetEnd = toks[k].e
					if strings.HasPrefix(text[streetEnd:], ".") && streetAbbrev[toks[k-1].w] {
						streetEnd++ // Hungarian "u. 12."
					}
					k++
				}
				i = k - 1
			}
		case toks[i].cap && (i == 0 || !toks[i-1].cap || toks[i].gap != " "):
			// "Via Franscini 71", "Rúa do Paseo 46", "Ilmalankuja 82".
			k := i + 1
			street := streetBefore[toks[i].w] || isStreetCompound(toks[i].w)
			for k < len(toks) && k-i < 6 && (toks[k].gap == " " || toks[k].gap == ". ") && (toks[k].cap || particles[strings.ToLower(toks[k].w)] || streetAbbrev[toks[k].w]) {
				street = street || euroAfter[toks[k].w] || isStreetCompound(toks[k].w) || streetAbbrev[toks[k].w]
				k++
			}
			if street && k < len(toks) && isHouseNumber(toks[k]) && (toks[k].gap == " " || toks[k].gap == ". ") {
				start, streetEnd, score = toks[i].s, toks[k].e, 0.8
				i = k
			}
		}
		if start < 0 {
			continue
		}
		end := g.extendAddress(text, toks, i+1, streetEnd)
		if strings.Contains(strings.ToLower(text[max(0, start-24):start]), "address") {
			score += 0.1
		}
		out = append(out, span{StreetAddress, start, end, min(score, 0.95)})
		for i+1 < len(toks) && toks[i+1].s < end {
			i++
		}
	}
	return out
}

func capFirst(w string) string {
	r, n := utf8.DecodeRuneInString(w)
	if r >= 'a' && r <= 'z' {
		return string(r-32) + w[n:]
	}
	return w
}

// extendAddress extends an address over the unit, city, region, country
// and postcode that follow it, on the same line or the next lines. It stops
// at the first word that reads as ordinary prose.
func (g *gazetteer) extendAddress(text string, toks []tok, k, end int) int {
	lines := 0
	for k < len(toks) && lines < 5 {
		t := toks[k]
		gap := t.gap
		if strings.Count(gap, "\n") == 2 && len(gap) <= 6 && g.countryLine(toks, k) {
			gap = "\n" // a blank line before the country and postcode line
		}
		if strings.Count(gap, "\n") > 1 || len(gap) > 12 || strings.ContainsAny(gap, ".;!?()\"+") && !(strings.HasPrefix(gap, ".") && strings.Trim(gap[1:], " \n,") == "" && !strings.Contains(gap, ",")) {
			break
		}
		if t.num && (phoneLike(text, t.e) || strings.Count(t.w, "-") >= 2) {
			break // the next line is a phone number, not a postcode
		}
		if strings.HasPrefix(gap, ".") && !strings.Contains(gap, "\n") && !unitWords[t.w] && (g.common[strings.ToLower(t.w)] || stopCaps[t.w]) {
			break // a sentence ended: "Springfield. My SSN is ..."
		}
		if strings.Contains(gap, "\n") || strings.Contains(gap, ",") {
			lines++
		}
		prevUnit := k > 0 && unitWords[toks[k-1].w]
		switch {
		case unitWords[t.w] || unitWords[t.w+"."] || t.w == "PO":
			end = t.e
			if strings.HasPrefix(text[t.e:], ".") {
				end++
			}
		case t.num && (prevUnit || len(t.w) >= 3 || lines > 0):
			end = t.e
		case t.num && len(t.w) <= 2 && strings.HasPrefix(gap, " "):
			end = t.e
		case t.upper && utf8.RuneCountInString(t.w) <= 3:
			end = t.e // state or region code, "CO", "NSW"
		case t.upper || t.cap:
			if !(strings.Contains(gap, "\n") || strings.Contains(gap, ",") || toks[k-1].e == end) {
				return end
			}
			end = t.e
		case strings.ToLower(t.w) == "nan":
			end = t.e // a missing field as some generators write it
		default:
			return end
		}
		k++
	}
	return end
}

func allCap(toks []tok) bool {
	for _, t := range toks {
		if !t.cap {
			return false
		}
	}
	return true
}

func anyCommon(g *gazetteer, toks []tok) bool {
	for _, t := range toks {
		if g.common[strings.ToLower(t.w)] || g.capwords[t.w] || stopCaps[t.w] {
			return true
		}
	}
	return false
}

// phoneLike reports a number token ending at i that continues as a phone
// number would: a separator and more digits on the same line.
func phoneLike(text string, i int) bool {
	if i+1 < len(text) && (text[i] == '-' || text[i] == '.' || text[i] == ' ') && isDigit(text[i+1]) {
		return true
	}
	return false
}

// countryLine reports a line starting at token k that holds a country
// and/or a postcode, and nothing else.
func (g *gazetteer) countryLine(toks []tok, k int) bool {
	words := 0
	for j := k; j < len(toks) && (j == k || !strings.Contains(toks[j].gap, "\n")); j++ {
		t := toks[j]
		words++
		if words > 4 {
			return false
		}
		if t.num {
			continue
		}
		if sc, ok := g.places[t.w]; ok && sc <= 0.4 {
			continue
		}
		if j+1 < len(toks) && toks[j+1].gap == " " {
			if sc, ok := g.places[t.w+" "+toks[j+1].w]; ok && sc <= 0.4 {
				j++
				continue
			}
		}
		return false
	}
	return words > 0
}

// scanPostal finds addresses that have no street: US military addresses
// ("PSC 1437, Box 3833\nAPO AA 66791", "USNS Møller\nFPO AA 85844"),
// post-office boxes, and postcodes after a label ("ZIP: 8592").
func scanPostal(text, lt string, out []span) []span {
	for _, m := range []string{"apo ", "fpo ", "dpo "} {
		off := 0
		for {
			k := strings.Index(lt[off:], m)
			if k < 0 {
				break
			}
			i := off + k
			off = i + 4
			if i > 0 && isAlnum(lt[i-1]) || i+12 > len(lt) {
				continue
			}
			st := lt[i+4 : i+6]
			if (st != "aa" && st != "ae" && st != "ap") || lt[i+6] != ' ' || !allDigits(lt[i+7:i+12]) {
				continue
			}
			end := i + 12
			start := i
			// The line before: "PSC 1437, Box 3833", "Unit 1009 Box 0219", "USNS Møller".
			ls := strings.LastIndexByte(lt[:i], '\n') + 1
			from, to := ls, i // the search area: the same line before APO...
			if strings.TrimSpace(lt[ls:i]) == "" && ls > 0 {
				from, to = strings.LastIndexByte(lt[:ls-1], '\n')+1, ls-1 // ...or the line before
			}
			for _, pre := range []string{"psc ", "unit ", "cmr ", "usns ", "usnv ", "uss ", "uscgc "} {
				if k := strings.LastIndex(lt[from:to], pre); k >= 0 && (from+k == 0 || !isAlnum(lt[from+k-1])) {
					start = from + k
					break
				}
			}
			out = append(out, span{StreetAddress, start, end, 0.9})
		}
	}
	for _, lab := range []string{"zip:", "zip code:", "postcode:", "postal code:", "post code:", "plz:"} {
		off := 0
		for {
			k := strings.Index(lt[off:], lab)
			if k < 0 {
				break
			}
			i := off + k + len(lab)
			off = i
			for i < len(text) && text[i] == ' ' {
				i++
			}
			e := i
			for e < len(text) && (isAlnum(text[e]) || (text[e] == ' ' || text[e] == '-') && e+1 < len(text) && isAlnum(text[e+1]) && e-i < 8) {
				e++
			}
			if e-i >= 3 && e-i <= 10 && countDigits(text[i:e]) >= 2 {
				out = append(out, span{StreetAddress, i, e, 0.85})
			}
		}
	}
	for _, m := range []string{"p.o. box ", "po box ", "p. o. box ", "postfach "} {
		off := 0
		for {
			k := strings.Index(lt[off:], m)
			if k < 0 {
				break
			}
			i := off + k
			e := i + len(m)
			off = e
			d := e
			for d < len(text) && isDigit(text[d]) {
				d++
			}
			if d > e {
				out = append(out, span{StreetAddress, i, d, 0.8})
			}
		}
	}
	return out
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return len(s) > 0
}
