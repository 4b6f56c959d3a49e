package privacy

import (
	"strings"
)

// Recognizers for identifiers that leak the environment (credentials after
// a key, user and host names, home-directory paths) and for dates of birth
// written with month names.

type keyRule struct {
	typ    string
	minLen int
	score  float64
	colon  bool // the key must be followed by ':' or '=' (not "is")
}

var keyRules = map[string]keyRule{
	"password": {Secret, 4, 0.9, false}, "passwd": {Secret, 4, 0.9, false}, "pwd": {Secret, 4, 0.85, true},
	"passphrase": {Secret, 4, 0.9, false}, "secret": {Secret, 8, 0.85, true}, "token": {Secret, 8, 0.85, true},
	"api_key": {Secret, 8, 0.9, false}, "apikey": {Secret, 8, 0.9, false}, "api-key": {Secret, 8, 0.9, false},
	"access_key": {Secret, 8, 0.9, true}, "secret_key": {Secret, 8, 0.9, true}, "client_secret": {Secret, 8, 0.9, true},
	"auth_token": {Secret, 8, 0.9, true}, "access_token": {Secret, 8, 0.9, true}, "bearer": {Secret, 12, 0.9, false},
	"private_key": {Secret, 8, 0.9, true}, "key": {Secret, 12, 0.8, true}, "aws_secret_access_key": {Secret, 8, 0.95, true},
	"username": {Username, 2, 0.8, true}, "user_name": {Username, 2, 0.8, true}, "login": {Username, 2, 0.7, true},
	"user": {Username, 2, 0.7, true}, "hostname": {Hostname, 2, 0.8, true}, "host": {Hostname, 2, 0.7, true},
	"machine": {Hostname, 2, 0.7, true}, "computer": {Hostname, 2, 0.7, true}, "computername": {Hostname, 2, 0.8, true},
}

// placeholderValues are values that are obviously not real credentials.
var placeholderValues = []string{"***", "xxx", "<", "your", "redacted", "changeme", "example", "${", "{{", "null", "none", "true", "false"}

func isKeyChar(c byte) bool { return isAlpha(c) || c == '_' || c == '-' }

// scanKeyValues finds "key: value" and "key=value" pairs whose key names a
// credential, a user or a host.
func scanKeyValues(text string, out []span) []span {
	for i := 0; i < len(text); {
		if !isKeyChar(text[i]) {
			i++
			continue
		}
		j := i
		for j < len(text) && isKeyChar(text[j]) && j-i < 32 {
			j++
		}
		raw := strings.Trim(text[i:j], "-_")
		if len(raw) < 3 || len(raw) > 32 {
			i = j
			continue
		}
		var buf [32]byte
		for k := 0; k < len(raw); k++ {
			buf[k] = lower(raw[k])
		}
		lk := buf[:len(raw)]
		rule, ok := keyRules[string(lk)] // no allocation for a map lookup
		if !ok {
			if k := strings.LastIndexAny(raw, "_-"); k >= 0 {
				rule, ok = keyRules[string(lk[k+1:])] // db_password, x-api-key → password, key
			}
		}
		key := ""
		if ok {
			key = string(lk)
		}
		if !ok || (i > 0 && isAlnum(text[i-1])) {
			i = j
			continue
		}
		v := j
		for v < len(text) && (text[v] == '"' || text[v] == '\'') {
			v++
		}
		for v < len(text) && text[v] == ' ' {
			v++
		}
		sep := false
		if v < len(text) && (text[v] == ':' || text[v] == '=') {
			sep = true
			v++
		} else if !rule.colon && strings.HasPrefix(strings.ToLower(text[v:]), "is ") {
			sep = true
			v += 3
		} else if strings.HasSuffix(key, "bearer") && v > j {
			sep = true
		}
		if !sep {
			i = j
			continue
		}
		// "User: hello" opens a chat turn; a user name needs "=" or no space.
		if rule.typ != Secret && text[v-1] == ':' && v < len(text) && text[v] == ' ' {
			i = v
			continue
		}
		for v < len(text) && (text[v] == ' ' || text[v] == '"' || text[v] == '\'') {
			v++
		}
		e := v
		for e < len(text) && text[e] > ' ' && text[e] != '"' && text[e] != '\'' && text[e] != ',' && text[e] != ';' && e-v < 512 {
			e++
		}
		for e > v && strings.IndexByte(".)]}>", text[e-1]) >= 0 {
			e--
		}
		val := text[v:e]
		if len(val) >= rule.minLen && !containsAny(strings.ToLower(val), placeholderValues...) && valueFits(rule.typ, val) {
			out = append(out, span{rule.typ, v, e, rule.score})
		}
		i = e
		if i <= j {
			i = j
		}
	}
	return out
}

func valueFits(typ, val string) bool {
	switch typ {
	case Username, Hostname:
		for k := 0; k < len(val); k++ {
			c := val[k]
			if !isAlnum(c) && c != '.' && c != '-' && c != '_' {
				return false
			}
		}
		return len(val) <= 64 && isAlpha(val[0])
	}
	return true
}

// homePrefixes start a path whose next segment is a user name.
var homePrefixes = []string{"/home/", "/Users/", "/users/", "C:\\Users\\", "c:\\users\\", "C:/Users/", "/var/mail/", "C:\\Documents and Settings\\"}

var notUsers = map[string]bool{"shared": true, "public": true, "default": true, "all users": true, "": true}

func isPathChar(c byte) bool {
	return c > ' ' && c != '"' && c != '\'' && c != '`' && c != '<' && c != '>' && c != '|' && c != ')' && c != ','
}

// scanPaths finds home-directory paths. The whole path is the entity; the
// Session replaces only its user-name segment.
func scanPaths(text string, out []span) []span {
	for _, p := range homePrefixes {
		off := 0
		for {
			k := strings.Index(text[off:], p)
			if k < 0 {
				break
			}
			i := off + k
			off = i + len(p)
			if i > 0 && isPathChar(text[i-1]) && text[i-1] != '=' && text[i-1] != ':' {
				continue
			}
			u := userSegment(text[i:], len(p))
			if notUsers[strings.ToLower(u)] {
				continue
			}
			e := i + len(p)
			for e < len(text) && (isPathChar(text[e]) || (text[e] == ' ' && strings.Contains(p, "\\") && e+1 < len(text) && isAlnum(text[e+1]))) {
				e++
			}
			for e > i && strings.IndexByte(".:;!?", text[e-1]) >= 0 {
				e--
			}
			out = append(out, span{FilePath, i, e, 0.85})
			off = e
		}
	}
	return out
}

// userSegment returns the path segment after the first n bytes of p.
func userSegment(p string, n int) string {
	e := n
	for e < len(p) && p[e] != '/' && p[e] != '\\' && isPathChar(p[e]) {
		e++
	}
	return p[n:e]
}

// hostnameScore rates tokens that look like machine names: Windows default
// names, mDNS and home-network suffixes, personal laptop names.
func hostnameScore(tok string) float64 {
	lt := strings.ToLower(tok)
	switch {
	case (strings.HasPrefix(tok, "DESKTOP-") || strings.HasPrefix(tok, "LAPTOP-")) && len(tok) >= 13:
		return 0.85
	case strings.Contains(lt, "macbook") || strings.Contains(lt, "-imac") || strings.HasSuffix(lt, "-pc") || strings.HasSuffix(lt, "-laptop"):
		return 0.75
	}
	for _, suf := range []string{".local", ".lan", ".internal", ".localdomain", ".home.arpa", ".corp"} {
		if strings.HasSuffix(lt, suf) && len(lt) > len(suf)+1 {
			return 0.75
		}
	}
	return 0
}

// scanLogHosts finds the host field of syslog lines:
// "Nov 22 02:11:25 alice-laptop sshd[812]: ...".
func scanLogHosts(text string, out []span) []span {
	for ls := 0; ls < len(text); {
		le := strings.IndexByte(text[ls:], '\n')
		if le < 0 {
			le = len(text)
		} else {
			le += ls
		}
		line := text[ls:le]
		if len(line) > 20 && monthAt(strings.ToLower(line[:3]), 0) == 3 && line[3] == ' ' &&
			(isDigit(line[4]) || line[4] == ' ') && isDigit(line[5]) && line[6] == ' ' &&
			isDigit(line[7]) && line[9] == ':' && line[12] == ':' && line[15] == ' ' {
			h := 16
			e := h
			for e < len(line) && line[e] != ' ' {
				e++
			}
			if e > h && e < len(line) && valueFits(Hostname, line[h:e]) {
				out = append(out, span{Hostname, ls + h, ls + e, 0.8})
			}
		}
		ls = le + 1
	}
	return out
}

// scanDomainUsers finds Windows DOMAIN\user names: "CORP\jsmith".
func scanDomainUsers(text string, out []span) []span {
	for i := 1; i+1 < len(text); i++ {
		if text[i] != '\\' || !isAlpha(text[i+1]) {
			continue
		}
		d := i
		for d > 0 && (text[d-1] >= 'A' && text[d-1] <= 'Z' || isDigit(text[d-1]) || text[d-1] == '-') {
			d--
		}
		if i-d < 2 || i-d > 15 || (d > 0 && isAlnum(text[d-1])) || (d > 0 && text[d-1] == ':') {
			continue
		}
		e := i + 1
		for e < len(text) && (isAlnum(text[e]) || text[e] == '.' || text[e] == '_' || text[e] == '-') {
			e++
		}
		if e-i-1 >= 2 && (e == len(text) || text[e] != '\\') {
			out = append(out, span{Username, i + 1, e, 0.75})
		}
	}
	return out
}

var months = []string{"january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december",
	"jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"}

// scanDOBWords finds dates with month names after a birth marker:
// "born on 3 March 1985", "DOB: March 3rd, 1985".
func scanDOBWords(text, lt string, out []span) []span {
	for _, w := range []string{"born", "birth", "dob", "birthday", "d.o.b"} {
		off := 0
		for {
			k := strings.Index(lt[off:], w)
			if k < 0 {
				break
			}
			i := off + k + len(w)
			off = i
			limit := i + 40
			if limit > len(text) {
				limit = len(text)
			}
			if st, en := findWordDate(lt, i, limit); en > st {
				out = append(out, span{DateOfBirth, st, en, 0.9})
				off = en
			}
		}
	}
	return out
}

// findWordDate finds "3 March 1985" or "March 3(rd), 1985" starting in
// lt[from:limit].
func findWordDate(lt string, from, limit int) (int, int) {
	for i := from; i < limit; i++ {
		if i > 0 && isAlnum(lt[i-1]) {
			continue
		}
		if isDigit(lt[i]) {
			j := i
			for j < len(lt) && isDigit(lt[j]) {
				j++
			}
			if j-i > 2 {
				continue
			}
			j = skipOrdinal(lt, j)
			j = skipSpaces(lt, j)
			if m := monthAt(lt, j); m > 0 {
				j = skipSpaces(lt, j+m)
				if y := yearAt(lt, j); y > 0 {
					return i, j + y
				}
			}
			continue
		}
		if m := monthAt(lt, i); m > 0 {
			j := skipSpaces(lt, i+m)
			d := j
			for d < len(lt) && isDigit(lt[d]) {
				d++
			}
			if d == j || d-j > 2 {
				continue
			}
			d = skipOrdinal(lt, d)
			if d < len(lt) && lt[d] == ',' {
				d++
			}
			d = skipSpaces(lt, d)
			if y := yearAt(lt, d); y > 0 {
				return i, d + y
			}
		}
	}
	return 0, 0
}

func skipSpaces(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '.') {
		i++
	}
	return i
}

func skipOrdinal(s string, i int) int {
	for _, o := range []string{"st", "nd", "rd", "th"} {
		if strings.HasPrefix(s[i:], o) {
			return i + 2
		}
	}
	return i
}

func monthAt(s string, i int) int {
	for _, m := range months {
		if strings.HasPrefix(s[i:], m) && (i+len(m) == len(s) || !isAlpha(s[i+len(m)])) {
			return len(m)
		}
	}
	return 0
}

func yearAt(s string, i int) int {
	if i+4 <= len(s) && isDigit(s[i]) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) && (i+4 == len(s) || !isDigit(s[i+4])) {
		return 4
	}
	return 0
}
