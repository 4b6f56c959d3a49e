package privacy

import (
	"math"
	"net/netip"
	"strings"
)

// The structured recognizers. Each is a linear pass over the bytes that
// finds candidates by a cheap trigger ('@', a digit, "://", a known key
// prefix) and then validates them (checksums, parsers, field rules), so
// their cost grows with the text and not with the number of patterns.

func (s *Scanner) scanStructured(text string, out []span) []span {
	out = scanEmails(text, out)
	out = s.scanNumbers(text, out)
	out = scanIBANs(text, out)
	out = scanHexColon(text, out)
	out = scanURLs(text, out)
	out = scanTokens(text, out)
	out = scanKeyValues(text, out)
	out = scanPaths(text, out)
	out = scanPEM(text, out)
	lt := strings.ToLower(text) // byte offsets match for ASCII markers; non-ASCII folding may shift, so callers check bounds
	if len(lt) != len(text) {
		lt = asciiLower(text)
	}
	out = scanDOBWords(text, lt, out)
	out = scanNINO(text, out)
	out = scanPostal(text, lt, out)
	out = scanLogHosts(text, out)
	out = scanDomainUsers(text, out)
	return out
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isAlnum(c byte) bool { return isDigit(c) || isAlpha(c) }
func isHex(c byte) bool   { return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'f') }
func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 32
	}
	return c
}

// ctxBefore returns up to n bytes before i, lower-cased ASCII, for context
// checks.
func ctxBefore(text string, i, n int) string {
	j := i - n
	if j < 0 {
		j = 0
	}
	return strings.ToLower(text[j:i])
}

func containsAny(s string, words ...string) bool {
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// ---- email addresses and user@host ----

func isLocalChar(c byte) bool {
	return isAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-'
}

func isDomainChar(c byte) bool { return isAlnum(c) || c == '-' || c == '.' }

func scanEmails(text string, out []span) []span {
	off := 0
	for {
		k := strings.IndexByte(text[off:], '@')
		if k < 0 {
			return out
		}
		at := off + k
		off = at + 1
		i := at
		for i > 0 && isLocalChar(text[i-1]) && at-i < 64 {
			i--
		}
		for i < at && text[i] == '.' {
			i++
		}
		j := at + 1
		for j < len(text) && isDomainChar(text[j]) && j-at < 255 {
			j++
		}
		for j > at+1 && (text[j-1] == '.' || text[j-1] == '-') {
			j--
		}
		if i == at || j == at+1 {
			continue
		}
		domain := text[at+1 : j]
		dot := strings.LastIndexByte(domain, '.')
		if dot < 0 {
			// user@host, as in a shell prompt "alice@laptop:~$" or "[alice@laptop dir]$".
			prompt := j < len(text) && text[j] == ':' && j+1 < len(text) && (text[j+1] == '~' || text[j+1] == '/')
			prompt = prompt || (i > 0 && text[i-1] == '[' && j < len(text) && text[j] == ' ')
			// "ssh alice@devbox", "scp f bob@build01:/tmp".
			prompt = prompt || containsAny(ctxBefore(text, i, 40), "ssh ", "scp ", "rsync ", "sftp ", "mosh ", "git clone ")
			if prompt {
				out = append(out, span{Username, i, at, 0.85}, span{Hostname, at + 1, j, 0.85})
			}
			continue
		}
		tld := domain[dot+1:]
		if len(tld) < 2 || !allAlpha(tld) || strings.Contains(domain, "..") {
			continue
		}
		out = append(out, span{Email, i, j, 0.95})
		off = j
	}
}

// asciiLower lower-cases ASCII letters only, keeping byte offsets.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		b[i] = lower(c)
	}
	return string(b)
}

func allAlpha(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isAlpha(s[i]) {
			return false
		}
	}
	return true
}

// ---- IBAN ----

var ibanLengths = map[string]int{
	"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
	"BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
	"EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
	"GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
	"IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21,
	"LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28,
	"NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22,
	"RU": 33, "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25,
	"SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}

// ibanValid checks an IBAN without separators: country length and mod-97.
func ibanValid(s string) bool {
	if len(s) < 15 || len(s) > 34 {
		return false
	}
	want, ok := ibanLengths[strings.ToUpper(s[:2])]
	if !ok || want != len(s) || !isDigit(s[2]) || !isDigit(s[3]) {
		return false
	}
	r := 0
	for k := 0; k < len(s); k++ {
		c := s[(k+4)%len(s)]
		switch {
		case isDigit(c):
			r = (r*10 + int(c-'0')) % 97
		case isAlpha(c):
			v := int(lower(c)-'a') + 10
			r = (r*100 + v) % 97
		default:
			return false
		}
	}
	return r == 1
}

func scanIBANs(text string, out []span) []span {
	for i := 0; i+4 <= len(text); i++ {
		if !isAlpha(text[i]) || !isAlpha(text[i+1]) || !isDigit(text[i+2]) || !isDigit(text[i+3]) || (i > 0 && isAlnum(text[i-1])) {
			continue
		}
		if _, ok := ibanLengths[strings.ToUpper(text[i:i+2])]; !ok {
			continue
		}
		// Collect alphanumerics with single spaces or dashes between groups.
		var buf [40]byte
		n, j, best := 0, i, -1
		for j < len(text) && n < 34 {
			c := text[j]
			if isAlnum(c) {
				buf[n] = c
				n++
				j++
				if n >= 15 && (j == len(text) || !isAlnum(text[j])) && ibanValid(string(buf[:n])) {
					best = j
				}
				continue
			}
			if (c == ' ' || c == '-') && j+1 < len(text) && isAlnum(text[j+1]) && n > 0 {
				j++
				continue
			}
			break
		}
		if best > 0 {
			out = append(out, span{IBAN, i, best, 0.95})
			i = best - 1
		}
	}
	return out
}

// ---- IPv6 and MAC addresses ----

func scanHexColon(text string, out []span) []span {
	for i := 0; i < len(text); {
		if !(isHex(text[i]) || text[i] == ':') || (i > 0 && (isAlnum(text[i-1]) || text[i-1] == ':' || text[i-1] == '.')) {
			i++
			continue
		}
		j := i
		colons, dashes := 0, 0
		for j < len(text) && (isHex(text[j]) || text[j] == ':' || text[j] == '.' || text[j] == '-') {
			switch text[j] {
			case ':':
				colons++
			case '-':
				dashes++
			}
			j++
		}
		tok := strings.TrimRight(text[i:j], ".:-")
		end := i + len(tok)
		if end < len(text) && isAlnum(text[end]) {
			i = j
			continue
		}
		switch {
		case isMAC(tok):
			out = append(out, span{MACAddress, i, end, 0.9})
		case colons >= 2 && dashes == 0:
			if a, err := netip.ParseAddr(tok); err == nil && a.Is6() && countHex(tok) >= 3 {
				out = append(out, span{IPAddress, i, end, 0.95})
			}
		}
		if j == i {
			j++
		}
		i = j
	}
	return out
}

func countHex(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if isHex(s[i]) {
			n++
		}
	}
	return n
}

// isMAC accepts six two-digit hex groups separated by ':' or '-', or the
// dotted form aaaa.bbbb.cccc.
func isMAC(s string) bool {
	if len(s) == 17 {
		sep := s[2]
		if sep != ':' && sep != '-' {
			return false
		}
		for k := 0; k < 17; k++ {
			if k%3 == 2 {
				if s[k] != sep {
					return false
				}
			} else if !isHex(s[k]) {
				return false
			}
		}
		return true
	}
	if len(s) == 14 && s[4] == '.' && s[9] == '.' {
		for k := 0; k < 14; k++ {
			if k != 4 && k != 9 && !isHex(s[k]) {
				return false
			}
		}
		return true
	}
	return false
}

// ---- URLs with credentials or personal paths ----

func isURLChar(c byte) bool {
	return c > ' ' && c < 0x7f && c != '"' && c != '<' && c != '>' && c != '`' && c != '\'' && c != ')' && c != ']'
}

func scanURLs(text string, out []span) []span {
	off := 0
	for {
		k := strings.Index(text[off:], "://")
		if k < 0 {
			return out
		}
		p := off + k
		i := p
		for i > 0 && isAlpha(text[i-1]) {
			i--
		}
		j := p + 3
		for j < len(text) && isURLChar(text[j]) {
			j++
		}
		for j > p+3 && strings.IndexByte(".,;:!?", text[j-1]) >= 0 {
			j--
		}
		off = j
		if i == p || j <= p+3 {
			continue
		}
		u := text[i:j]
		rest := u[p+3-i:]
		hostEnd := strings.IndexAny(rest, "/?#")
		if hostEnd < 0 {
			hostEnd = len(rest)
		}
		lu := strings.ToLower(u)
		switch {
		case strings.Contains(rest[:hostEnd], "@"):
			out = append(out, span{URL, i, j, 0.95})
		case containsAny(lu, "/home/", "/users/", "/~", "token=", "key=", "password=", "passwd=", "secret=", "sig=", "signature=", "access_token", "session="):
			out = append(out, span{URL, i, j, 0.85})
		default:
			out = append(out, span{URL, i, j, 0.3})
		}
	}
}

// ---- secrets: known token formats and high-entropy strings ----

func isTokChar(c byte) bool {
	return isAlnum(c) || c == '_' || c == '-' || c == '+' || c == '/' || c == '=' || c == '.'
}

type tokenRule struct {
	prefix string
	min    int // minimum total length
}

var tokenRules = []tokenRule{
	{"AKIA", 20}, {"ASIA", 20}, {"ghp_", 40}, {"gho_", 40}, {"ghu_", 40}, {"ghs_", 40}, {"ghr_", 40},
	{"github_pat_", 50}, {"glpat-", 26}, {"xoxb-", 20}, {"xoxp-", 20}, {"xoxa-", 20}, {"xoxs-", 20}, {"xoxr-", 20},
	{"sk_live_", 24}, {"sk_test_", 24}, {"rk_live_", 24}, {"pk_live_", 24}, {"whsec_", 24},
	{"AIza", 39}, {"sk-", 23}, {"hf_", 30}, {"npm_", 40}, {"SG.", 40}, {"ya29.", 30},
}

func scanTokens(text string, out []span) []span {
	for i := 0; i < len(text); {
		if !isTokChar(text[i]) {
			i++
			continue
		}
		j := i
		for j < len(text) && isTokChar(text[j]) {
			j++
		}
		tok := strings.TrimRight(text[i:j], ".")
		if k := strings.LastIndexByte(strings.TrimRight(tok, "="), '='); k >= 0 {
			i += k + 1 // NAME=value: the value is the token
			tok = tok[k+1:]
		}
		if len(tok) >= 16 {
			if sc := secretScore(tok); sc > 0 {
				out = append(out, span{Secret, i, i + len(tok), sc})
			}
		}
		if len(tok) >= 6 && (i == 0 || text[i-1] != '@') {
			if sc := hostnameScore(tok); sc > 0 {
				out = append(out, span{Hostname, i, i + len(tok), sc})
			}
		}
		i = j
	}
	return out
}

// secretScore rates a token that looks like a credential, 0 if it does not.
func secretScore(tok string) float64 {
	for _, r := range tokenRules {
		if strings.HasPrefix(tok, r.prefix) && len(tok) >= r.min && classes(tok[len(r.prefix):]) >= 2 {
			return 0.95
		}
	}
	if strings.HasPrefix(tok, "eyJ") && strings.Count(tok, ".") == 2 {
		parts := strings.Split(tok, ".")
		if len(parts[0]) >= 10 && strings.HasPrefix(parts[1], "eyJ") && len(parts[2]) >= 10 {
			return 0.95
		}
	}
	if len(tok) >= 24 && !strings.ContainsAny(tok, "./") && classes(tok) >= 3 && entropy(tok) >= 3.5 {
		return 0.6
	}
	return 0
}

// classes counts the character classes (lower, upper, digit) in s.
func classes(s string) int {
	var lo, up, di int
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z':
			lo = 1
		case c >= 'A' && c <= 'Z':
			up = 1
		case isDigit(c):
			di = 1
		}
	}
	return lo + up + di
}

// entropy is the Shannon entropy of s in bits per byte.
func entropy(s string) float64 {
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	h := 0.0
	n := float64(len(s))
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}

// scanPEM finds PEM private-key blocks.
func scanPEM(text string, out []span) []span {
	off := 0
	for {
		k := strings.Index(text[off:], "-----BEGIN ")
		if k < 0 {
			return out
		}
		i := off + k
		le := strings.Index(text[i:], "-----\n")
		head := ""
		if le > 0 && le < 80 {
			head = text[i : i+le]
		}
		off = i + 11
		if !strings.Contains(head, "PRIVATE KEY") {
			continue
		}
		e := strings.Index(text[i:], "-----END ")
		end := len(text)
		if e >= 0 {
			if f := strings.Index(text[i+e+9:], "-----"); f >= 0 {
				end = i + e + 9 + f + 5
			}
		}
		out = append(out, span{Secret, i, end, 0.99})
		off = end
	}
}
