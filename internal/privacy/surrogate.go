package privacy

import (
	"fmt"
	"strings"
	"unicode"
)

// Surrogates: plausible values of the same kind, all from reserved,
// documentation or test ranges so that none is a real person's data.

var surFirst = strings.Fields(`Alex Jordan Morgan Taylor Casey Riley Jamie Avery Quinn Rowan Emery Hayden Skyler Reese
	Dakota Parker Sawyer Finley Harper Logan Blake Cameron Drew Elliot Frankie Gray Hollis Jesse Kendall Lane Marlow
	Noel Oakley Peyton Remy Sage Tatum Val Wren Ellis Robin Shay Arden Bellamy Corin Dallas Eden Farrell Greer`)

var surLast = strings.Fields(`Carter Bennett Hayes Morgan Ellison Whitaker Prescott Lindqvist Okafor Brennan Castillo
	Delacroix Fairbanks Galloway Hargrove Iverson Jardine Kowalczyk Langford Marchetti Novak Oyelaran Pemberton Quintero
	Rasmussen Sutherland Thorne Underhill Vasquez Wexley Yardley Zeller Ashdown Blackwood Calloway Drummond Everly
	Fenwick Glenmore Holloway Ingram Kettering Lockhart Merriweather Northcott Ormsby Penhallow Redgrave Stanfield`)

var surOrgs = strings.Fields(`Contoso Fabrikam Northwind Initech Globex Umbrellix Vandelay Wonka Tyrell Hooli Pied Soylent
	Cyberdyne Wayneco Stark Oscorp Gringotts Monarch Dunder Acmecorp Bluth Sterling Prestige Nakatomi Virtucon Genco`)

var surCities = strings.Fields(`Springfield Riverton Fairview Lakeside Oakridge Maplewood Brookfield Greenville Ashford
	Clearwater Elmstead Foxborough Glenhaven Hillcrest Ivydale Juniper Kingsbridge Larkspur Millbrook Northfield`)

var surStreets = strings.Fields(`Maple Oak Cedar Elm Pine Birch Willow Aspen Chestnut Hawthorn Juniper Laurel Magnolia Poplar Sycamore`)

var surStreetTypes = strings.Fields(`Street Avenue Road Lane Drive Court Place Way`)

var surUsers = strings.Fields(`jdoe asmith bwilson cmiller dlee ejohnson fgarcia gmartin hclark ilewis`)

// testCards are the networks' published test numbers, by length.
var testCards = map[int][]string{
	16: {"4111111111111111", "5555555555554444", "4242424242424242", "5105105105105100", "4012888888881881", "6011111111111117", "3530111333300000", "6011000990139424", "3566002020360505", "4000056655665556"},
	15: {"378282246310005", "371449635398431", "378734493671000"},
	14: {"30569309025904", "38520000023237"},
	13: {"4222222222222"},
}

func (ss *Session) surrogate(typ, orig string) string {
	switch typ {
	case Person:
		return ss.personSurrogate(orig)
	case Organization:
		suffix := ""
		words := strings.Fields(orig)
		if len(words) > 1 && orgSuffixes[words[len(words)-1]] {
			suffix = " " + words[len(words)-1]
		}
		return ss.pick(typ, func(n int) string {
			v := surOrgs[n%len(surOrgs)]
			if n >= len(surOrgs) {
				v += fmt.Sprint(n / len(surOrgs))
			}
			return v + suffix
		})
	case Location:
		return ss.pick(typ, func(n int) string {
			v := surCities[n%len(surCities)]
			if n >= len(surCities) {
				v = "North " + v
			}
			return v
		})
	case StreetAddress:
		return ss.pick(typ, func(n int) string {
			return fmt.Sprintf("%d %s %s", 100+n*7, surStreets[n%len(surStreets)], surStreetTypes[n%len(surStreetTypes)])
		})
	case Email:
		return ss.pick(typ, func(n int) string {
			return fmt.Sprintf("%s.%s@example.com", strings.ToLower(surFirst[n%len(surFirst)]), strings.ToLower(surLast[(n/len(surFirst))%len(surLast)]))
		})
	case Phone:
		if strings.HasPrefix(orig, "+") {
			// North American 555-0100..0199 numbers are reserved for fiction.
			return ss.pick(typ, func(n int) string { return fmt.Sprintf("+1 202-555-%04d", 100+n%100) })
		}
		return ss.pick(typ, func(n int) string { return fillDigits(orig, fmt.Sprintf("5550100%03d", n%1000), false) })
	case CreditCard:
		return ss.pick(typ, func(n int) string { return shapeLike(orig, testCard(countDigits(orig), n)) })
	case IBAN:
		return ss.pick(typ, func(n int) string { return shapeLike(orig, testIBAN(compact(orig), n)) })
	case USSSN:
		return ss.pick(typ, func(n int) string { return fillDigits(orig, fmt.Sprintf("000%02d%04d", n/10000%100, n%10000+1), false) })
	case UKNINO:
		return ss.pick(typ, func(n int) string { return fmt.Sprintf("QQ %02d %02d %02d C", n/10000%100, n/100%100, n%100) })
	case IPAddress:
		if strings.Contains(orig, ":") {
			return ss.pick(typ, func(n int) string { return fmt.Sprintf("2001:db8::%x", n+1) })
		}
		return ss.pick(typ, func(n int) string {
			nets := []string{"192.0.2", "198.51.100", "203.0.113"}
			return fmt.Sprintf("%s.%d", nets[n/250%3], n%250+1)
		})
	case MACAddress:
		sep := ":"
		if strings.Contains(orig, "-") {
			sep = "-"
		}
		return ss.pick(typ, func(n int) string {
			return strings.Join([]string{"00", "00", "5E", "00", "53", fmt.Sprintf("%02X", n%256)}, sep)
		})
	case URL:
		scheme, _, _ := strings.Cut(orig, "://")
		return ss.pick(typ, func(n int) string { return fmt.Sprintf("%s://example.com/resource-%d", scheme, n+1) })
	case DateOfBirth:
		return ss.pick(typ, func(n int) string { return dateLike(orig, n) })
	case Secret:
		return ss.pick(typ, func(n int) string { return secretLike(orig, n) })
	case Username:
		return ss.userSurrogate(orig)
	case Hostname:
		return ss.pick(typ, func(n int) string {
			if strings.Contains(orig, ".") {
				return fmt.Sprintf("host-%d.example.lan", n+1)
			}
			return fmt.Sprintf("workstation-%d", n+1)
		})
	case FilePath:
		for _, p := range homePrefixes {
			if strings.HasPrefix(orig, p) {
				u := userSegment(orig, len(p))
				return p + ss.userSurrogate(u) + orig[len(p)+len(u):]
			}
		}
	}
	return ss.placeholder(typ, orig)
}

func (ss *Session) userSurrogate(u string) string {
	key := Username + "\x00" + u
	if v, ok := ss.fwd[key]; ok {
		return v
	}
	v := ss.pick(Username, func(n int) string {
		v := surUsers[n%len(surUsers)]
		if n >= len(surUsers) {
			v += fmt.Sprint(n / len(surUsers))
		}
		return v
	})
	ss.fwd[key] = v
	ss.rev[v] = u
	ss.used[strings.ToLower(v)] = true
	return v
}

// personSurrogate maps each word of a name to a stand-in word, reusing the
// words already mapped, so "John Smith", "John" and "Mr Smith" stay one
// person.
func (ss *Session) personSurrogate(orig string) string {
	words := strings.Fields(orig)
	out := make([]string, len(words))
	for k, w := range words {
		if v, ok := ss.nameTok[w]; ok {
			out[k] = v
			continue
		}
		if particles[w] && k > 0 && k < len(words)-1 {
			out[k] = w // "bin", "van": keep
			continue
		}
		if len([]rune(w)) <= 2 && strings.HasSuffix(w, ".") || len([]rune(w)) == 1 {
			out[k] = w // an initial carries little; keep it
			continue
		}
		list, typ := surLast, "PERSON_LAST"
		if k == 0 && (len(words) > 1 || ss.sc.gz.first[w]) {
			list, typ = surFirst, "PERSON_FIRST"
		}
		v := ss.pick(typ, func(n int) string {
			v := list[n%len(list)]
			if n >= len(list) {
				v += strings.Repeat("e", n/len(list))
			}
			if ss.sc.gz.common[strings.ToLower(v)] {
				return "" // "Drew", "Lane": an ordinary word would be restored by mistake
			}
			return v
		})
		ss.used[strings.ToLower(v)] = true
		ss.nameTok[w] = v
		ss.nameRev[v] = w
		out[k] = v
	}
	return strings.Join(out, " ")
}

func countDigits(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			n++
		}
	}
	return n
}

func compact(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, s)
}

// fillDigits writes digits into the digit positions of shape, keeping its
// separators; with keepPlus the leading '+' stays.
func fillDigits(shape, digits string, keepPlus bool) string {
	var b strings.Builder
	k := 0
	for i := 0; i < len(shape); i++ {
		c := shape[i]
		if isDigit(c) {
			if k < len(digits) {
				b.WriteByte(digits[k])
			} else {
				b.WriteByte('0' + byte(k%10))
			}
			k++
			continue
		}
		if c == '+' && !keepPlus {
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// shapeLike writes the characters of value into the alphanumeric positions
// of shape.
func shapeLike(shape, value string) string {
	var b strings.Builder
	k := 0
	for i := 0; i < len(shape); i++ {
		if isAlnum(shape[i]) {
			if k < len(value) {
				b.WriteByte(value[k])
				k++
			}
			continue
		}
		b.WriteByte(shape[i])
	}
	b.WriteString(value[min(k, len(value)):])
	return b.String()
}

// testCard returns a Luhn-valid test number of n digits.
func testCard(n, k int) string {
	if list := testCards[n]; k < len(list) {
		return list[k]
	}
	d := []byte(fmt.Sprintf("4000%015d", k))[:n-1]
	for c := byte('0'); c <= '9'; c++ {
		if luhn(string(d) + string(c)) {
			return string(d) + string(c)
		}
	}
	return string(d) + "0"
}

// testIBAN returns a valid IBAN of the same country and length as orig,
// with a bank and account part of zeros and a counter.
func testIBAN(orig string, k int) string {
	if len(orig) < 5 {
		return orig
	}
	cc := strings.ToUpper(orig[:2])
	bban := []byte(strings.Repeat("0", len(orig)-4))
	tail := fmt.Sprint(k + 1)
	copy(bban[len(bban)-min(len(tail), len(bban)):], tail)
	for c := 2; c <= 98; c++ {
		v := fmt.Sprintf("%s%02d%s", cc, c, bban)
		if ibanValid(v) {
			return v
		}
	}
	return cc + "00" + string(bban)
}

// dateLike writes another date in the same format as orig.
func dateLike(orig string, n int) string {
	lo := strings.ToLower(orig)
	if m := monthIn(lo); m != "" {
		return fmt.Sprintf("%d %s %d", 1+n%28, "January", 1970+n/28%30)
	}
	var groups []int
	cur := 0
	for i := 0; i < len(orig); i++ {
		if isDigit(orig[i]) {
			cur++
		} else if cur > 0 {
			groups = append(groups, cur)
			cur = 0
		}
	}
	if cur > 0 {
		groups = append(groups, cur)
	}
	var digits strings.Builder
	small := 0
	for _, g := range groups {
		switch {
		case g == 4:
			fmt.Fprintf(&digits, "%04d", 1970+n%30)
		case small == 0:
			digits.WriteString("01"[2-min(g, 2):])
			small++
		default:
			fmt.Fprintf(&digits, "%02d", 10+n/30%18)
		}
	}
	return fillDigits(orig, digits.String(), false)
}

func monthIn(lo string) string {
	for _, m := range months {
		if strings.Contains(lo, m) {
			return m
		}
	}
	return ""
}

// secretLike keeps a credential's known prefix and length and fills the
// rest with an obvious example value.
func secretLike(orig string, n int) string {
	if strings.HasPrefix(orig, "-----BEGIN") {
		return fmt.Sprintf("-----BEGIN PRIVATE KEY-----\nEXAMPLE-KEY-%d\n-----END PRIVATE KEY-----", n+1)
	}
	prefix := ""
	for _, r := range tokenRules {
		if strings.HasPrefix(orig, r.prefix) {
			prefix = r.prefix
		}
	}
	if strings.HasPrefix(orig, "eyJ") {
		prefix = "eyJ"
	}
	body := fmt.Sprintf("EXAMPLE%dSECRET", n+1)
	want := len(orig) - len(prefix)
	// Pad with zeros, not X: a run of X reads as "XXX" to a content
	// screen and would cut an answer that quotes the stand-in.
	for len(body) < want {
		body += "0"
	}
	if want < len(body) && want >= 8 {
		body = body[:want]
	}
	if strings.IndexFunc(orig, unicode.IsLower) >= 0 && strings.IndexFunc(orig, unicode.IsUpper) < 0 {
		body = strings.ToLower(body)
	}
	return prefix + body
}
