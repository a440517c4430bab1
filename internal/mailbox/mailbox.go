// Package mailbox decides when two email addresses name the same mailbox: the lookup key of an
// address, the ASCII (IDNA) form of its domain, and which addresses look like another and are
// refused for new accounts.
//
// The rule, in one place:
//
//   - Domain: converted to its ASCII form with IDNA 2008 / UTS #46 lookup processing (so
//     "Bücher.example", "xn--bcher-kva.example" and "bücher.example." are one domain) and
//     lower-cased. This is what DNS itself does, so it can never merge two mailboxes.
//   - Local part: only the ASCII letters A–Z are case-folded. Every other character is kept as
//     it is: Unicode case folding and compatibility mappings send "\u212Aim" (KELVIN SIGN),
//     "b\u0130ll" or "\uff41da" (full-width) onto "kim", "bill" and "ada", which are other
//     people's mailboxes (the class of Django CVE-2019-19844).
//
// A non-ASCII local part is therefore its own account. New accounts are refused (Vet) when an
// address holds compatibility characters, characters that case-fold to an ASCII letter, or a
// mix of scripts in one part, so such look-alikes cannot be created unless a project opts in.
package mailbox

import (
	"strings"
	"unicode"

	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"
)

// profile is IDNA lookup processing, spelled out rather than idna.Lookup, whose configuration
// the library may change: a change would silently change keys that rows are stored under.
var profile = idna.New(
	idna.MapForLookup(),
	idna.Transitional(false),
	idna.BidiRule(),
	idna.CheckHyphens(true),
	idna.CheckJoiners(true),
	idna.StrictDomainName(true),
	idna.VerifyDNSLength(true),
)

// Key is the form in which addresses are compared and kept unique: the domain in ASCII and
// lower case, the local part with only A–Z lower-cased. It accepts any input (it never fails):
// a domain that is not a valid IDN is lower-cased in ASCII only, so it matches nothing that
// was stored through Domain.
func Key(addr string) string {
	addr = strings.TrimSpace(addr)
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return foldASCII(addr)
	}
	// Every trailing dot (and space) goes, not only the dot of the fully qualified form, so
	// that the key of a key is itself.
	local := addr[:at]
	domain := strings.TrimRightFunc(addr[at+1:], func(r rune) bool { return r == '.' || unicode.IsSpace(r) })
	if a, err := Domain(domain); err == nil {
		domain = a
	} else {
		domain = foldASCII(domain)
	}
	return foldASCII(local) + "@" + domain
}

// Domain returns the ASCII form of a domain name (A-labels, lower case, no trailing dot), or
// an error when it is not a valid internationalised domain name.
func Domain(domain string) (string, error) {
	return profile.ToASCII(strings.TrimSuffix(domain, "."))
}

// foldASCII lower-cases A–Z and nothing else.
func foldASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// Problem says why Vet refuses an address for a new account.
type Problem string

// The reasons Vet gives.
const (
	// Compatibility: a character that NFKC maps to another (full-width letters, ligatures
	// such as U+FB00, the KELVIN SIGN): it displays as, and is often delivered to, the
	// mailbox of the plain form.
	Compatibility Problem = "contains compatibility characters (such as full-width letters or ligatures) that stand for other characters"
	// FoldsToASCII: a non-ASCII letter whose case partner is an ASCII letter (U+0130, U+0131,
	// U+017F, U+212A): mail systems that fold Unicode case deliver it to an ASCII address.
	FoldsToASCII Problem = "contains a character that case-folds to an ASCII letter (such as \u0130, \u0131 or \u017f)"
	// MixedScript: letters of several scripts in one part, the shape of a spoofed address
	// ("p\u0430ypal" with a Cyrillic a).
	MixedScript Problem = "mixes letters of different scripts"
)

// Vet checks an address (as typed, trimmed) for use by a new account and returns "" when it
// may be used. The local part and each label of the domain (the domain in its Unicode form,
// so that an A-label is checked for what it displays as) are checked separately: a Cyrillic
// local part at a Latin domain is normal, a Cyrillic letter inside a Latin word is not.
func Vet(addr string) Problem {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return ""
	}
	local, domain := addr[:at], strings.TrimSuffix(addr[at+1:], ".")
	parts := []string{local}
	if norm.NFKC.String(domain) != domain {
		return Compatibility
	}
	if u, err := idna.Display.ToUnicode(domain); err == nil {
		domain = u
	}
	parts = append(parts, strings.Split(domain, ".")...)
	for _, p := range parts {
		if norm.NFKC.String(p) != p {
			return Compatibility
		}
		for _, r := range p {
			if foldsToASCII(r) {
				return FoldsToASCII
			}
		}
		if mixedScript(p) {
			return MixedScript
		}
	}
	return ""
}

// foldsToASCII reports whether r is not ASCII but shares a case-folding orbit with an ASCII
// letter (U+212A KELVIN SIGN with k, U+017F LONG S with s), or is one of the Turkic letters
// whose case mapping lands on ASCII (U+0130 lower-cases to i, U+0131 upper-cases to I).
func foldsToASCII(r rune) bool {
	if r < 0x80 {
		return false
	}
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < 0x80 {
			return true
		}
	}
	return unicode.ToLower(r) < 0x80 || unicode.ToUpper(r) < 0x80
}

// allowedMixes are the combinations of scripts that UTS #39 "highly restrictive" allows in one
// identifier, because they are how Japanese, Chinese and Korean are written.
var allowedMixes = [][]*unicode.RangeTable{
	{unicode.Latin, unicode.Han, unicode.Hiragana, unicode.Katakana},
	{unicode.Latin, unicode.Han, unicode.Bopomofo},
	{unicode.Latin, unicode.Han, unicode.Hangul},
}

// mixedScript reports whether s has letters of more than one script, outside the allowed mixes.
// Common and Inherited characters (digits, punctuation, combining marks) belong to any script.
func mixedScript(s string) bool {
	var seen []*unicode.RangeTable
	for _, r := range s {
		if r < 0x80 {
			if ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') {
				seen = addScript(seen, unicode.Latin)
			}
			continue
		}
		if unicode.Is(unicode.Common, r) || unicode.Is(unicode.Inherited, r) {
			continue
		}
		seen = addScript(seen, scriptOf(r))
	}
	if len(seen) <= 1 {
		return false
	}
	for _, mix := range allowedMixes {
		if subset(seen, mix) {
			return false
		}
	}
	return true
}

func addScript(seen []*unicode.RangeTable, t *unicode.RangeTable) []*unicode.RangeTable {
	for _, s := range seen {
		if s == t {
			return seen
		}
	}
	return append(seen, t)
}

func subset(a, b []*unicode.RangeTable) bool {
	for _, x := range a {
		found := false
		for _, y := range b {
			if x == y {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// unknownScript stands for a character in no script table (unassigned code points): it counts
// as a script of its own, so it never passes as part of a single-script word.
var unknownScript = &unicode.RangeTable{}

func scriptOf(r rune) *unicode.RangeTable {
	for _, t := range unicode.Scripts {
		if unicode.Is(t, r) {
			return t
		}
	}
	return unknownScript
}
