package privacy

import (
	"net/netip"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// numRun is a run of digit groups joined by phone-like separators.
type numRun struct {
	start, end int
	groups     [][2]int // byte spans of the digit groups
	plus       bool
}

func isNumSep(c byte) bool {
	return c == ' ' || c == '-' || c == '.' || c == '/' || c == '(' || c == ')'
}

// scanNumbers finds digit runs and classifies each as an IPv4 address, a
// date of birth, a card number, an SSN or a phone number, in that order.
func (s *Scanner) scanNumbers(text string, out []span) []span {
	var groups [][2]int
	for i := 0; i < len(text); {
		c := text[i]
		lead := (c == '+' || c == '(') && i+1 < len(text) && isDigit(text[i+1])
		if !isDigit(c) && !lead {
			i++
			continue
		}
		if i > 0 && (isAlnum(text[i-1]) || text[i-1] == '_' || text[i-1] == '.' || text[i-1] == ':' || text[i-1] == '/') {
			i++
			for i < len(text) && (isAlnum(text[i]) || text[i] == '_') {
				i++
			}
			continue
		}
		run := numRun{start: i, plus: c == '+'}
		j := i
		if lead {
			j++
		}
		groups = groups[:0]
		for j < len(text) && len(groups) < 12 {
			if isDigit(text[j]) {
				g := j
				for j < len(text) && isDigit(text[j]) && j-g < 20 {
					j++
				}
				groups = append(groups, [2]int{g, j})
				continue
			}
			k := j
			for k < len(text) && k-j < 2 && isNumSep(text[k]) {
				k++
			}
			if k > j && k < len(text) && isDigit(text[k]) && (k-j == 1 || !strings.ContainsAny(text[j:k], "./")) {
				j = k
				continue
			}
			break
		}
		if j < len(text) && text[j] == ')' && strings.Contains(text[run.start:j], "(") {
			j++
		}
		run.end = j
		run.groups = groups
		if j+1 < len(text) && text[j] == 'x' && isDigit(text[j+1]) {
			// A phone extension, "463-612-6138x036".
			k := j + 1
			for k < len(text) && isDigit(text[k]) {
				k++
			}
			if k == len(text) || !isAlnum(text[k]) {
				run.end, j = k, k
			}
		}
		if j < len(text) && (isAlpha(text[j]) || text[j] == '_' || text[j] == '@') {
			for j < len(text) && (isAlnum(text[j]) || text[j] == '_') {
				j++
			}
			i = j
			continue
		}
		out = s.classifyNumber(text, run, out)
		i = run.end
		if i == run.start {
			i++
		}
	}
	return out
}

func digitsOf(text string, groups [][2]int) string {
	var b strings.Builder
	for _, g := range groups {
		b.WriteString(text[g[0]:g[1]])
	}
	return b.String()
}

// seps returns the separator text between consecutive groups.
func seps(text string, groups [][2]int) []string {
	var out []string
	for k := 1; k < len(groups); k++ {
		out = append(out, text[groups[k-1][1]:groups[k][0]])
	}
	return out
}

var dobWords = []string{"born", "birth", "dob", "d.o.b", "birthday", "geboren", "né le", "née le"}

var phoneWords = []string{"phone", "call", "tel", "mobile", "cell", "fax", "contact", "reach", "text me", "whatsapp", "number", "answering", "dial", "ring", "landline", "sms"}

var cardWords = []string{"card", "visa", "mastercard", "amex", "credit", "debit", "cc", "payment"}

func (s *Scanner) classifyNumber(text string, run numRun, out []span) []span {
	g := run.groups
	if len(g) == 0 {
		return out
	}
	raw := text[run.start:run.end]
	d := digitsOf(text, g)
	sp := seps(text, g)
	ctx := ctxBefore(text, run.start, 48)

	// IPv4: four dot-separated groups.
	if len(g) == 4 && !run.plus && allSep(sp, ".") {
		if a, err := netip.ParseAddr(raw); err == nil && a.Is4() {
			return append(out, span{IPAddress, run.start, run.end, 0.95})
		}
	}
	if len(g) >= 4 && !run.plus && allSep(sp[:3], ".") {
		// An IPv4 address followed by more digits (a port or a list): take the address.
		end := g[3][1]
		if a, err := netip.ParseAddr(text[run.start:end]); err == nil && a.Is4() {
			return append(out, span{IPAddress, run.start, end, 0.95})
		}
	}
	// Dates: never phone numbers; dates of birth when marked as such.
	if isDate(text, g, sp) {
		if containsAny(ctx, dobWords...) {
			out = append(out, span{DateOfBirth, run.start, run.end, 0.9})
		}
		return out
	}
	if notAPhone(text, g, sp) {
		return out
	}
	if sc := cardScore(d, sp, ctx); sc >= 0.5 {
		return append(out, span{CreditCard, run.start, run.end, sc})
	} else if sc > 0 {
		out = append(out, span{CreditCard, run.start, run.end, sc})
	}
	if sc := ssnScore(text, g, sp, ctx); sc > 0 {
		out = append(out, span{USSSN, run.start, run.end, sc})
	}
	if sc := s.phoneScore(raw, d, run.plus, len(g), ctx); sc > 0 {
		out = append(out, span{Phone, run.start, run.end, sc})
		return out
	}
	// A shorter prefix at a group boundary: "4111 1111 1111 1111 12/27" or a
	// phone number followed by an unrelated figure.
	for k := len(g) - 1; k >= 1; k-- {
		sub := g[:k]
		end := sub[k-1][1]
		dd := digitsOf(text, sub)
		if sc := cardScore(dd, sp[:k-1], ctx); sc >= 0.5 {
			return append(out, span{CreditCard, run.start, end, sc})
		}
		if k < 2 || !containsAny(ctx, phoneWords...) {
			continue // a phone number inside a longer figure only with phone context
		}
		if sc := s.phoneScore(text[run.start:end], dd, run.plus, k, ctx); sc >= 0.7 {
			return append(out, span{Phone, run.start, end, sc})
		}
	}
	return out
}

func allSep(sp []string, want string) bool {
	for _, x := range sp {
		if x != want {
			return false
		}
	}
	return len(sp) > 0
}

// isDate reports d/m/y, m/d/y and y-m-d shapes with one separator kind.
func isDate(text string, g [][2]int, sp []string) bool {
	if len(g) != 3 || (sp[0] != sp[1]) || (sp[0] != "-" && sp[0] != "/" && sp[0] != ".") {
		return false
	}
	l0, l1, l2 := g[0][1]-g[0][0], g[1][1]-g[1][0], g[2][1]-g[2][0]
	return (l0 == 4 && l1 <= 2 && l2 <= 2) || (l0 <= 2 && l1 <= 2 && (l2 == 4 || l2 == 2))
}

func luhn(d string) bool {
	sum, alt := 0, false
	for k := len(d) - 1; k >= 0; k-- {
		v := int(d[k] - '0')
		if alt {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		alt = !alt
	}
	return sum%10 == 0
}

// knownIIN reports whether d starts like a card of a major network with a
// length that network issues.
func knownIIN(d string) bool {
	n := len(d)
	p2 := int(d[0]-'0')*10 + int(d[1]-'0')
	p4 := p2*100 + int(d[2]-'0')*10 + int(d[3]-'0')
	switch {
	case d[0] == '4':
		return n == 13 || n == 16 || n == 19
	case p2 >= 51 && p2 <= 55, p4 >= 2221 && p4 <= 2720:
		return n == 16
	case p2 == 34 || p2 == 37:
		return n == 15
	case p4 == 6011 || p2 == 65 || (p4 >= 6440 && p4 <= 6499) || p2 == 62:
		return n >= 16 && n <= 19
	case p2 == 35:
		return n >= 16 && n <= 19
	case p2 == 36 || p2 == 38 || p2 == 39 || (p4 >= 3000 && p4 <= 3059):
		return n >= 14 && n <= 19
	case p2 == 50 || (p2 >= 56 && p2 <= 69):
		return n >= 12 && n <= 19 // Maestro
	}
	return false
}

func cardScore(d string, sp []string, ctx string) float64 {
	if len(d) < 12 || len(d) > 19 || !luhn(d) {
		return 0
	}
	for _, x := range sp {
		if x != " " && x != "-" {
			return 0
		}
	}
	if strings.Count(d, string(d[0])) == len(d) {
		return 0
	}
	iin := knownIIN(d)
	hasCtx := containsAny(ctx, cardWords...)
	switch {
	case iin && len(d) >= 13:
		return 0.95
	case iin && hasCtx:
		return 0.85
	case hasCtx && len(d) >= 13:
		return 0.8
	}
	return 0.4
}

// ssnValid applies the SSA's rules: no area 000, 666 or 9xx, no group 00,
// no serial 0000.
func ssnValid(d string) bool {
	if len(d) != 9 {
		return false
	}
	area, group, serial := d[:3], d[3:5], d[5:]
	return area != "000" && area != "666" && area[0] != '9' && group != "00" && serial != "0000"
}

var ssnWords = []string{"ssn", "social security", "social sec", "taxpayer", "tin"}

func ssnScore(text string, g [][2]int, sp []string, ctx string) float64 {
	d := digitsOf(text, g)
	if !ssnValid(d) {
		return 0
	}
	hasCtx := containsAny(ctx, ssnWords...)
	shaped := len(g) == 3 && g[0][1]-g[0][0] == 3 && g[1][1]-g[1][0] == 2 && sp[0] == sp[1]
	switch {
	case shaped && sp[0] == "-":
		if hasCtx {
			return 0.95
		}
		return 0.85
	case shaped && (sp[0] == " " || sp[0] == "."):
		if hasCtx {
			return 0.9
		}
		return 0.6
	case len(g) == 1 && hasCtx:
		return 0.9
	}
	return 0
}

// phoneScore validates a candidate with libphonenumber's rules: with a
// leading '+' as an international number, otherwise as a national number
// of each configured region in turn.
func (s *Scanner) phoneScore(raw, d string, plus bool, ngroups int, ctx string) float64 {
	if len(d) < 7 || len(d) > 15 {
		return 0
	}
	hasCtx := containsAny(ctx, phoneWords...)
	bonus := 0.0
	if hasCtx {
		bonus = 0.2
	}
	if plus {
		num, err := phonenumbers.Parse(raw, "ZZ")
		if err != nil {
			return 0
		}
		if phonenumbers.IsValidNumber(num) {
			return 0.95
		}
		if phonenumbers.IsPossibleNumber(num) {
			return 0.7 + bonus
		}
		return 0
	}
	possible := false
	for _, r := range s.regions {
		num, err := phonenumbers.Parse(raw, r)
		if err != nil {
			continue
		}
		if phonenumbers.IsValidNumberForRegion(num, r) {
			switch {
			case hasCtx:
				return 0.9
			case ngroups > 1:
				return 0.75
			}
			return 0.5
		}
		if !possible {
			switch phonenumbers.IsPossibleNumberWithReason(num) {
			case phonenumbers.IS_POSSIBLE, phonenumbers.IS_POSSIBLE_LOCAL_ONLY:
				possible = true
			}
		}
	}
	if possible {
		if ngroups > 1 {
			return 0.5 + bonus
		}
		return 0.3 + bonus
	}
	return 0
}

// ---- UK National Insurance numbers ----

func ninoPrefixOK(a, b byte) bool {
	if strings.IndexByte("DFIQUV", a) >= 0 || strings.IndexByte("DFIOQUV", b) >= 0 {
		return false
	}
	switch string([]byte{a, b}) {
	case "BG", "GB", "KN", "NK", "NT", "TN", "ZZ":
		return false
	}
	return true
}

// scanNINO finds UK NINOs: two letters, six digits (optionally in pairs),
// a suffix A-D.
func scanNINO(text string, out []span) []span {
	for i := 0; i+9 <= len(text); i++ {
		a, b := text[i], text[i+1]
		if a < 'A' || a > 'Z' || b < 'A' || b > 'Z' || (i > 0 && isAlnum(text[i-1])) || !ninoPrefixOK(a, b) {
			continue
		}
		j, n := i+2, 0
		for j < len(text) && n < 6 {
			if isDigit(text[j]) {
				n++
				j++
			} else if text[j] == ' ' && n%2 == 0 && j+1 < len(text) && isDigit(text[j+1]) {
				j++
			} else {
				break
			}
		}
		if n != 6 {
			continue
		}
		if j < len(text) && text[j] == ' ' && j+1 < len(text) && text[j+1] >= 'A' && text[j+1] <= 'D' {
			j++
		}
		if j < len(text) && text[j] >= 'A' && text[j] <= 'D' && (j+1 == len(text) || !isAlnum(text[j+1])) {
			out = append(out, span{UKNINO, i, j + 1, 0.85})
			i = j
		}
	}
	return out
}

// notAPhone rejects digit runs that are other figures: year ranges
// ("1999-2000"), thousands ("1.000.000", "31,000"), counts ("1 2 3 4 5").
func notAPhone(text string, g [][2]int, sp []string) bool {
	if len(g) >= 3 && g[0][1]-g[0][0] == 4 && isYear(text[g[0][0]:g[0][1]]) {
		return true // "1996 08 21 88 16": a timestamp
	}
	for k, x := range sp {
		if strings.Contains(x, "/") && (g[k+1][1]-g[k+1][0] == 4 || g[k][1]-g[k][0] == 4) {
			return true // "01/28/2015 11": a date and more
		}
	}
	if len(g) == 2 && g[0][1]-g[0][0] == 4 && g[1][1]-g[1][0] == 4 && isYear(text[g[0][0]:g[0][1]]) && isYear(text[g[1][0]:g[1][1]]) {
		return true
	}
	if len(g) >= 2 && (allSep(sp, ".") || allSep(sp, ",")) && g[0][1]-g[0][0] <= 3 {
		thousands := true
		for _, x := range g[1:] {
			thousands = thousands && x[1]-x[0] == 3
		}
		if thousands {
			return true
		}
	}
	ones := 0
	for _, x := range g {
		if x[1]-x[0] == 1 {
			ones++
		}
	}
	return ones >= 4
}

func isYear(s string) bool { return (s[0] == '1' && s[1] == '9') || (s[0] == '2' && s[1] == '0') }
