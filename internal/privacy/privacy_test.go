package privacy_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/peerllm/peerllm/internal/privacy"
)

func newScanner(t testing.TB, cfg privacy.Config) *privacy.Scanner {
	t.Helper()
	s, err := privacy.NewScanner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// found returns the text of the entities of type typ.
func found(ents []privacy.Entity, typ string) []string {
	var out []string
	for _, e := range ents {
		if e.Type == typ {
			out = append(out, e.Text)
		}
	}
	return out
}

func TestRecognizers(t *testing.T) {
	s := newScanner(t, privacy.Config{})
	cases := []struct {
		name, text, typ, want string // want "" means: no entity of typ
	}{
		{"email", "write to jane.doe+x@mail.example.org today", privacy.Email, "jane.doe+x@mail.example.org"},
		{"email no tld", "write to jane@localhost today", privacy.Email, ""},
		{"email trailing dot", "Mail bob@acme.co.uk.", privacy.Email, "bob@acme.co.uk"},
		{"visa spaced", "my card 4111 1111 1111 1111 expires", privacy.CreditCard, "4111 1111 1111 1111"},
		{"amex", "amex 378282246310005", privacy.CreditCard, "378282246310005"},
		{"card bad luhn", "my card 4111 1111 1111 1112 expires", privacy.CreditCard, ""},
		{"card with expiry", "card 5555555555554444 12/27", privacy.CreditCard, "5555555555554444"},
		{"iban", "IBAN DE89 3704 0044 0532 0130 00 please", privacy.IBAN, "DE89 3704 0044 0532 0130 00"},
		{"iban compact", "send to GB82WEST12345698765432.", privacy.IBAN, "GB82WEST12345698765432"},
		{"iban bad check", "IBAN DE88 3704 0044 0532 0130 00", privacy.IBAN, ""},
		{"ssn", "His social security number is 125-17-4954", privacy.USSSN, "125-17-4954"},
		{"ssn bad area", "number 666-17-4954", privacy.USSSN, ""},
		{"ssn area 9xx", "number 912-17-4954", privacy.USSSN, ""},
		{"nino", "NI number AB 12 34 56 C.", privacy.UKNINO, "AB 12 34 56 C"},
		{"nino bad prefix", "code GB123456A", privacy.UKNINO, ""},
		{"ipv4", "server at 10.0.12.7:8080", privacy.IPAddress, "10.0.12.7"},
		{"ipv4 invalid", "version 999.1.1.1 out", privacy.IPAddress, ""},
		{"ipv6", "ping fe80::1ff:fe23:4567:890a now", privacy.IPAddress, "fe80::1ff:fe23:4567:890a"},
		{"time not ipv6", "at 12:30:45 sharp", privacy.IPAddress, ""},
		{"mac", "device 00:1A:2B:3C:4D:5E joined", privacy.MACAddress, "00:1A:2B:3C:4D:5E"},
		{"phone intl", "call me at +44 20 7946 0958", privacy.Phone, "+44 20 7946 0958"},
		{"phone us", "phone: (415) 555-2671", privacy.Phone, "(415) 555-2671"},
		{"phone de national", "Tel. 030 23125 000", privacy.Phone, "030 23125 000"},
		{"year range not phone", "He reigned 1935-1963 and died in 1970", privacy.Phone, ""},
		{"thousands not phone", "sold 140.000.000 copies", privacy.Phone, ""},
		{"timestamp not phone", "logged 1996 08 21 88 16", privacy.Phone, ""},
		{"counting not phone", "count 1 2 3 4 5 6 7", privacy.Phone, ""},
		{"terms and conditions", "Read the Terms & Conditions first", privacy.Organization, ""},
		{"from a place", "The girls crossed over from Noapara to the market", privacy.Organization, ""},
		{"score not address", "they won by 69 points 2 times", privacy.StreetAddress, ""},
		{"year not phone", "In 2019 we grew 12 percent", privacy.Phone, ""},
		{"date not phone", "on 2015-12-22 it rained", privacy.Phone, ""},
		{"dob numeric", "date of birth: 12/03/1985", privacy.DateOfBirth, "12/03/1985"},
		{"dob words", "I was born on 3 March 1985 in a village", privacy.DateOfBirth, "3 March 1985"},
		{"date not dob", "the meeting is on 12/03/2025", privacy.DateOfBirth, ""},
		{"aws key", "key AKIAIOSFODNN7EXAMPLE in config", privacy.Secret, "AKIAIOSFODNN7EXAMPLE"},
		{"github token", "token ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789 leaked", privacy.Secret, "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"},
		{"openai key", "OPENAI_API_KEY=sk-proj-a1B2c3D4e5F6g7H8i9J0kLmN", privacy.Secret, "sk-proj-a1B2c3D4e5F6g7H8i9J0kLmN"},
		{"jwt", "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", privacy.Secret, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"},
		{"password kv", `db_password = "hunter22"`, privacy.Secret, "hunter22"},
		{"password placeholder", `password: <your password>`, privacy.Secret, ""},
		{"pem", "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", privacy.Secret, "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----"},
		{"home path", "error in /home/alice/src/app/main.go: line 3", privacy.FilePath, "/home/alice/src/app/main.go"},
		{"windows path", `open C:\Users\bob\Documents\tax.pdf`, privacy.FilePath, `C:\Users\bob\Documents\tax.pdf`},
		{"shell prompt", "alice@thinkpad:~$ ls", privacy.Username, "alice"},
		{"shell prompt host", "alice@thinkpad:~$ ls", privacy.Hostname, "thinkpad"},
		{"chat turn is not a user", "User: hello there", privacy.Username, ""},
		{"ssh target user", "run ssh deploy@buildbox01 and check", privacy.Username, "deploy"},
		{"ssh target host", "run ssh deploy@buildbox01 and check", privacy.Hostname, "buildbox01"},
		{"syslog host", "Nov 22 02:11:25 alice-laptop sshd[812]: Accepted key", privacy.Hostname, "alice-laptop"},
		{"windows domain user", `logged in as CORP\jsmith today`, privacy.Username, "jsmith"},
		{"path is not a domain user", `C:\Windows\System32`, privacy.Username, ""},
		{"windows host", "connected from DESKTOP-7F3K2JQ today", privacy.Hostname, "DESKTOP-7F3K2JQ"},
		{"url with credentials", "clone https://bob:s3cret@git.example.net/repo.git", privacy.URL, "https://bob:s3cret@git.example.net/repo.git"},
		{"plain url", "see https://go.dev/doc for more", privacy.URL, ""},
		{"person with title", "Mr. Baker flew to Phoenix on Tuesday.", privacy.Person, "Baker"},
		{"person full name", "The report was written by Maria Gonzalez last week.", privacy.Person, "Maria Gonzalez"},
		{"my name is", "Hi, my name is Eliane", privacy.Person, "Eliane"},
		{"name with particle", "Our CEO Mohammed bin Salman approved it", privacy.Person, "Mohammed bin Salman"},
		{"capital city is not a person", "Best museums in Paris for kids?", privacy.Person, ""},
		{"capital city kept", "Best museums in Paris for kids?", privacy.Location, ""},
		{"landmark", "Is Big Ben taller than the Eiffel Tower?", privacy.Person, ""},
		{"lower-case name after intro", "could you block my card asap? my name is lena andersson.", privacy.Person, "lena andersson"},
		{"lower-case ordinary words after intro", "my name is not important", privacy.Person, ""},
		{"no person in prose", "What are my options for the new account?", privacy.Person, ""},
		{"org suffix", "I work at Acme Widgets Inc. since May", privacy.Organization, "Acme Widgets Inc"},
		{"org context", "I work for Socrata", privacy.Organization, "Socrata"},
		{"org is a company", "Persint is a German investment bank and financial services company", privacy.Organization, "Persint"},
		{"org law firm", "We hired Barnett, Melton and Garcia last year", privacy.Organization, "Barnett, Melton and Garcia"},
		{"org and sons", "Thomas and Sons is hiring", privacy.Organization, "Thomas and Sons"},
		{"org after person from", "Zoe Young from Flightaware is the keynote speaker", privacy.Organization, "Flightaware"},
		{"org descriptive suffix with context", "Amadeo from Rapid Cycle Solutions is here", privacy.Organization, "Rapid Cycle Solutions"},
		{"org acronym", "I used to work for NATO as a clerk", privacy.Organization, "NATO"},
		{"org letter head", "Kyruus\n\n9791 Markt 84 Apt. 597", privacy.Organization, "Kyruus"},
		{"no org in a plain title", "Where: the Country Club.", privacy.Organization, ""},
		{"org in signature", "Alma Jensen\nImedicare\n91215 Harjukuja 54\nSEINÄJOKI", privacy.Organization, "Imedicare"},
		{"street us", "I live at 1600 Pennsylvania Avenue, Washington", privacy.StreetAddress, "1600 Pennsylvania Avenue, Washington"},
		{"street europe", "The bus station is on Villacher Strasse 89", privacy.StreetAddress, "Villacher Strasse 89"},
		{"military address", "Please send it to PSC 1437, Box 3833\nAPO AA 66791 today", privacy.StreetAddress, "PSC 1437, Box 3833\nAPO AA 66791"},
		{"ship address", "Our offices are at USNS Møller\nFPO AA 85844", privacy.StreetAddress, "USNS Møller\nFPO AA 85844"},
		{"zip label", "ZIP: 8592", privacy.StreetAddress, "8592"},
		{"po box", "write to P.O. Box 255 please", privacy.StreetAddress, "P.O. Box 255"},
		{"hungarian", "808 Kálmán Imre u. 12.\n Apt. 762\n Zalakaros\n Hungary 06554", privacy.StreetAddress, "808 Kálmán Imre u. 12.\n Apt. 762\n Zalakaros\n Hungary 06554"},
		{"blank line before country", "20789 Allika 46\n Suite 501\n Riisa\n\n Estonia 62488", privacy.StreetAddress, "20789 Allika 46\n Suite 501\n Riisa\n\n Estonia 62488"},
		{"street compound", "Wohnt in der Hauptstraße 5", privacy.StreetAddress, "Hauptstraße 5"},
		{"address ends with its sentence", "Ship it to 742 Evergreen Terrace, Springfield. My SSN is on file.", privacy.StreetAddress, "742 Evergreen Terrace, Springfield"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := found(s.Scan(c.text), c.typ)
			if c.want == "" {
				if len(got) != 0 {
					t.Fatalf("Scan(%q) found %s %q, want none", c.text, c.typ, got)
				}
				return
			}
			if len(got) != 1 || got[0] != c.want {
				t.Fatalf("Scan(%q) %s = %q, want [%q] (all: %+v)", c.text, c.typ, got, c.want, s.Scan(c.text))
			}
		})
	}
}

func TestScanOffsetsAreCodePoints(t *testing.T) {
	s := newScanner(t, privacy.Config{})
	text := "Grüße von Zoë → mail zoë.x@example.com or ring +49 30 901820"
	ents := s.Scan(text)
	runes := []rune(text)
	if len(ents) == 0 {
		t.Fatal("no entities")
	}
	prevEnd := 0
	for _, e := range ents {
		if e.Start < prevEnd || e.End <= e.Start || e.End > len(runes) {
			t.Fatalf("bad span %+v", e)
		}
		if string(runes[e.Start:e.End]) != e.Text {
			t.Fatalf("span %d:%d is %q, entity text %q", e.Start, e.End, string(runes[e.Start:e.End]), e.Text)
		}
		prevEnd = e.End
	}
}

func TestOverlapResolution(t *testing.T) {
	s := newScanner(t, privacy.Config{})
	cases := []struct{ name, text, typ, want string }{
		// 4111111111111111 also parses as a phone number: the validated card wins.
		{"card beats phone", "call 4111111111111111", privacy.CreditCard, "4111111111111111"},
		// A name inside an email is part of the email.
		{"email contains name", "mail John.Smith@example.org now", privacy.Email, "John.Smith@example.org"},
		// The address contains a city; the address wins whole.
		{"address contains city", "ship to 12 Bond Street, London please", privacy.StreetAddress, "12 Bond Street, London"},
		// A credentials URL contains a user name and host.
		{"url contains user", "https://alice:pw@host.example.com/x", privacy.URL, "https://alice:pw@host.example.com/x"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ents := s.Scan(c.text)
			if got := found(ents, c.typ); len(got) != 1 || got[0] != c.want {
				t.Fatalf("got %+v, want one %s %q", ents, c.typ, c.want)
			}
			for i := 1; i < len(ents); i++ {
				if ents[i].Start < ents[i-1].End {
					t.Fatalf("overlapping result %+v", ents)
				}
			}
		})
	}
}

func TestThresholds(t *testing.T) {
	text := "She moved here from Hungary"
	def := newScanner(t, privacy.Config{})
	if got := found(def.Scan(text), privacy.Location); len(got) != 0 {
		t.Fatalf("a lone country is below the default threshold, got %q", got)
	}
	low := newScanner(t, privacy.Config{MinScore: map[string]float64{privacy.Location: 0.3}})
	if got := found(low.Scan(text), privacy.Location); len(got) != 1 || got[0] != "Hungary" {
		t.Fatalf("with threshold 0.3 got %q", got)
	}
	off := newScanner(t, privacy.Config{MinScore: map[string]float64{privacy.Email: 2}})
	if got := found(off.Scan("a@example.com"), privacy.Email); len(got) != 0 {
		t.Fatalf("disabled type still found: %q", got)
	}
	if _, err := privacy.NewScanner(privacy.Config{MinScore: map[string]float64{"NOPE": 1}}); err == nil {
		t.Fatal("unknown type accepted")
	}
}

func TestMarkupAndConfusables(t *testing.T) {
	s := newScanner(t, privacy.Config{})
	cases := []struct{ name, text, typ, want string }{
		{"bold email", "**jane@example.org**", privacy.Email, "jane@example.org"},
		{"html card", "<b>4111 1111 1111 1111</b>", privacy.CreditCard, "4111 1111 1111 1111"},
		{"code ip", "`192.168.1.20`", privacy.IPAddress, "192.168.1.20"},
		{"link email", "[mail](mailto:jane@example.org)", privacy.Email, "jane@example.org"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := found(s.Scan(c.text), c.typ); len(got) != 1 || got[0] != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
	// HTML tags inside an identifier are ignored for scanning; the whole
	// identifier, tags included, is reported.
	for _, c := range []struct{ text, typ, want string }{
		{"card 4111 <b>1111</b> 1111 1111 ok", privacy.CreditCard, "4111 <b>1111</b> 1111 1111"},
		{"mail jane@exa<span class=\"x\">mple</span>.org", privacy.Email, "jane@exa<span class=\"x\">mple</span>.org"},
	} {
		if got := found(s.Scan(c.text), c.typ); len(got) != 1 || got[0] != c.want {
			t.Errorf("Scan(%q) %s = %q, want %q", c.text, c.typ, got, c.want)
		}
	}
	// Other markup inside an identifier (markdown emphasis) breaks it into
	// pieces judged on their own; defined behaviour is no panic and no false merge.
	// Confusable letters (Cyrillic а in an email) leave the ASCII rest
	// detected, so at most the confusable letter stays.
	for _, text := range []string{"jane@exa<b>mple.org", "аlice@example.org", "４１１１ １１１１ １１１１ １１１１", strings.Repeat("\u200b", 10) + "bob@example.org"} {
		ents := s.Scan(text)
		for _, e := range ents {
			if !utf8.ValidString(e.Text) {
				t.Fatalf("invalid UTF-8 in %+v", e)
			}
		}
	}
	// Confusables are folded for scanning and the whole disguised
	// identifier is reported in its original form.
	folded := []struct{ text, typ, want string }{
		{"mail аlice@exаmple.org now", privacy.Email, "аlice@exаmple.org"},
		{"card ４１１１ １１１１ １１１１ １１１１", privacy.CreditCard, "４１１１ １１１１ １１１１ １１１１"},
		{"mail bob\u200b@example.org", privacy.Email, "bob\u200b@example.org"},
		{"ip 1０.0.0.１", privacy.IPAddress, "1０.0.0.１"},
	}
	for _, c := range folded {
		if got := found(s.Scan(c.text), c.typ); len(got) != 1 || got[0] != c.want {
			t.Errorf("Scan(%q) %s = %q, want %q", c.text, c.typ, got, c.want)
		}
	}
	// One-script text is not folded: a Russian name stays Cyrillic.
	if got := s.Scan("Привет, как дела? Всё хорошо."); len(got) != 0 {
		t.Errorf("Cyrillic prose: %+v", got)
	}
}

func TestEnormousInput(t *testing.T) {
	s := newScanner(t, privacy.Config{})
	unit := "Contact John Smith at john@example.com or +1 415 555 2671, card 4111111111111111. "
	text := strings.Repeat(unit, 5000) // ~430 KB, a hundred times a long prompt
	ents := s.Scan(text)
	if n := len(found(ents, privacy.Email)); n != 5000 {
		t.Fatalf("found %d emails, want 5000", n)
	}
	for _, pathological := range []string{
		strings.Repeat("7", 1<<18),               // one enormous number
		strings.Repeat("@", 1<<18),               // triggers without candidates
		strings.Repeat("A", 1<<18),               // one enormous word
		strings.Repeat("Ann, ", 1<<15),           // an enormous list of names
		strings.Repeat("<b>", 1<<15),             // markup only
		strings.Repeat("1 Main Street\n", 1<<13), // address lines without end
	} {
		_ = s.Scan(pathological)
		_ = s.NewSession().Anonymize(pathological)
	}
}

func TestListsShareAType(t *testing.T) {
	s := newScanner(t, privacy.Config{})
	cases := []struct {
		text, typ string
		want      []string
	}{
		{"Our three founders: Kónya, Becker and Vasquez.", privacy.Person, []string{"Kónya", "Becker", "Vasquez"}},
		{"Big clients: Bekins, Enervee Corporation and Civic Insight.", privacy.Organization, []string{"Bekins", "Enervee Corporation"}},
	}
	for _, c := range cases {
		t.Run(c.typ, func(t *testing.T) {
			got := strings.Join(found(s.Scan(c.text), c.typ), "|")
			if want := strings.Join(c.want, "|"); got != want {
				t.Fatalf("Scan(%q) %s = %q, want %q", c.text, c.typ, got, want)
			}
		})
	}
}
