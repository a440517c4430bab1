package directory

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/mailbox"
)

// Input limits. They bound what one record may hold so that a client cannot make the
// directory store (or later every token that copies these fields) arbitrarily large.
const (
	maxNameLen        = 200      // names of users, organizations, roles and permissions (runes)
	maxDescriptionLen = 1000     // role and permission descriptions (runes)
	maxGroups         = 100      // groups per user
	maxDomains        = 100      // whitelisted domains per organization
	maxRawAttributes  = 16 << 10 // encoded size of a user's raw_attributes
	maxPermissions    = 1000     // permissions per role
	maxRoleIDs        = 100      // roles per membership
	maxMemberBatch    = 100      // user ids per add/remove members call
	maxEmailLen       = 254      // RFC 5321 path limit minus the angle brackets
	maxLocalLen       = 64       // RFC 5321 local-part limit
	maxDomainLen      = 253      // RFC 1035 presentation form without the trailing dot
	maxLabelLen       = 63       // RFC 1035
	minPhoneDigits    = 8        // shortest E.164 number in use, with its country code
	maxPhoneDigits    = 15       // ITU-T E.164
	defaultLimit      = 20       // page size when the client gives none
	maxLimit          = 100      // largest page a client may ask for
	maxSlugLen        = 64       // matches slugPattern
)

var slugPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// NormalizeEmail trims s, puts its domain in its IDNA ASCII form (A-labels, lower case, no
// trailing dot: "Bücher.example." becomes "xn--bcher-kva.example") and checks that it is a
// plain address (local@domain, no display name, no comments, no quoted local part) whose domain
// is a DNS name. The local part keeps its case: some mail systems treat it as case-sensitive,
// and the address must reach the same mailbox the user typed. Field names the input field in
// the error. Accounts are found by store.EmailKey of the result; new accounts also pass
// CheckNewEmail.
func NormalizeEmail(field, s string) (string, error) {
	bad := func(reason string) error { return failure.InvalidField("invalid_email", field, reason) }
	s = strings.TrimSpace(s)
	if s == "" {
		return "", bad("must not be empty")
	}
	if len(s) > maxEmailLen {
		return "", bad(fmt.Sprintf("must be at most %d characters", maxEmailLen))
	}
	if strings.Count(s, "@") != 1 {
		return "", bad("must contain exactly one @")
	}
	// The fully qualified form of the domain (one trailing dot) is the same domain.
	s = strings.TrimSuffix(s, ".")
	addr, err := mail.ParseAddress(s)
	// ParseAddress also accepts "Name <a@b.c>", "<a@b.c>", comments and quoted local parts,
	// all of which it rewrites; an address it returns unchanged is a plain addr-spec.
	if err != nil || addr.Name != "" || addr.Address != s {
		return "", bad("must be a plain email address such as name@example.com")
	}
	at := strings.LastIndexByte(s, '@')
	local, domain := s[:at], s[at+1:]
	if len(local) > maxLocalLen {
		return "", bad(fmt.Sprintf("the part before @ must be at most %d characters", maxLocalLen))
	}
	for _, r := range local {
		// Format characters (such as U+202E, which reverses the text after it) make an
		// address display as another; no mail system needs them.
		if unicode.IsControl(r) || unicode.IsSpace(r) || unicode.Is(unicode.Cf, r) {
			return "", bad("must not contain spaces, control or format characters")
		}
	}
	if ascii, err := mailbox.Domain(domain); err == nil {
		domain = ascii
	} else if !isASCII(domain) {
		return "", bad("the part after @ is not a valid international domain name")
	}
	domain, err = normalizeDomain(domain)
	if err != nil {
		return "", bad("the part after @ " + err.Error())
	}
	return local + "@" + domain, nil
}

// CheckNewEmail refuses, for an address that is to become a new account's (sign-up, a user
// created or given a new address), the look-alikes of other addresses that mailbox.Vet finds:
// compatibility characters, characters that case-fold to ASCII and mixed scripts. Such an
// address gets a lookup key of its own, so it can never reach another account; refusing it
// keeps anyone from making an account that displays as someone else's. A project that needs
// such addresses sets emails.allow_lookalike_addresses. Email is NormalizeEmail's result.
func CheckNewEmail(field, email string, allowLookalikes bool) error {
	if allowLookalikes {
		return nil
	}
	if p := mailbox.Vet(email); p != "" {
		return failure.InvalidField("invalid_email", field, string(p)+
			": it could pass for another address (a project may allow such addresses with emails.allow_lookalike_addresses)")
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// NormalizePhone returns s in E.164 form: "+" followed by 8 to 15 digits, the first not zero.
// Spaces, dashes, dots and parentheses, which people type to group digits, are removed.
func NormalizePhone(field, s string) (string, error) {
	bad := func(reason string) error { return failure.InvalidField("invalid_phone", field, reason) }
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "+") {
		return "", bad("must be in E.164 form, starting with + and the country code")
	}
	var b strings.Builder
	b.WriteByte('+')
	for _, r := range s[1:] {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '(' || r == ')' || r == '.':
		default:
			return "", bad("may hold only digits after the +")
		}
	}
	out := b.String()
	digits := len(out) - 1
	if digits < minPhoneDigits || digits > maxPhoneDigits {
		return "", bad(fmt.Sprintf("must have %d to %d digits", minPhoneDigits, maxPhoneDigits))
	}
	if out[1] == '0' {
		return "", bad("country code must not start with 0")
	}
	return out, nil
}

// NormalizeDomain trims and lower-cases s and checks that it is a DNS host name: at least two
// letter-digit-hyphen labels of 1 to 63 characters, no label starting or ending with a hyphen,
// at most 253 characters, and a top-level label that is not all digits (so that an IPv4
// address is not taken for a name). One trailing dot (the fully qualified form) is dropped.
func NormalizeDomain(field, s string) (string, error) {
	d, err := normalizeDomain(strings.TrimSpace(s))
	if err != nil {
		return "", failure.InvalidField("invalid_domain", field, err.Error())
	}
	return d, nil
}

func normalizeDomain(s string) (string, error) {
	s = strings.ToLower(strings.TrimSuffix(s, "."))
	if s == "" {
		return "", fmt.Errorf("must be a domain name")
	}
	if len(s) > maxDomainLen {
		return "", fmt.Errorf("must be at most %d characters", maxDomainLen)
	}
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return "", fmt.Errorf("must be a domain name with a dot, such as example.com")
	}
	for _, l := range labels {
		if l == "" || len(l) > maxLabelLen {
			return "", fmt.Errorf("must have labels of 1 to %d characters between the dots", maxLabelLen)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return "", fmt.Errorf("must not have a label that starts or ends with a hyphen")
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
				return "", fmt.Errorf("may hold only letters, digits, hyphens and dots (use the xn-- form for international names)")
			}
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return "", fmt.Errorf("must not end in an all-numeric label")
	}
	return s, nil
}

// normalizeDomains validates, lower-cases and de-duplicates a list of domains, keeping the
// order of first appearance.
func normalizeDomains(field string, in []string) ([]string, error) {
	if len(in) > maxDomains {
		return nil, failure.InvalidField("invalid_request", field, fmt.Sprintf("must hold at most %d domains", maxDomains))
	}
	out := make([]string, 0, len(in))
	seen := make(map[string]bool, len(in))
	for i, s := range in {
		d, err := NormalizeDomain(fmt.Sprintf("%s[%d]", field, i), s)
		if err != nil {
			return nil, err
		}
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out, nil
}

// cleanText trims s and checks its length in runes and that it holds no control characters,
// which have no place in a display name and confuse logs and terminals; multiline text may
// hold line breaks and tabs. An empty result is allowed; callers that require a value check.
func cleanText(field, s string, max int, multiline bool) (string, error) {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) {
		return "", failure.InvalidField("invalid_request", field, "must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > max {
		return "", failure.InvalidField("invalid_request", field, fmt.Sprintf("must be at most %d characters", max))
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t' || r == '\r')) {
			return "", failure.InvalidField("invalid_request", field, "must not contain control characters")
		}
		// Bidirectional overrides and other invisible format characters let a name display as
		// another; the zero-width joiners are kept because emoji and several scripts need them.
		if unicode.Is(unicode.Cf, r) && r != '\u200c' && r != '\u200d' {
			return "", failure.InvalidField("invalid_request", field, "must not contain invisible format characters")
		}
	}
	return s, nil
}

// requiredName is cleanText for a name that must not be empty.
func requiredName(field, s string) (string, error) {
	s, err := cleanText(field, s, maxNameLen, false)
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", failure.InvalidField("invalid_request", field, "is required")
	}
	return s, nil
}

// checkSlug trims s and checks it against the slug pattern.
func checkSlug(s string) (string, error) {
	s = strings.TrimSpace(s)
	if !slugPattern.MatchString(s) {
		return "", failure.InvalidField("invalid_request", "slug",
			"must be 1 to 64 lower-case letters, digits, _ or -, starting with a letter or digit")
	}
	return s, nil
}

// DeriveSlug makes a slug from a name: lower-cased ASCII letters and digits, every run of other
// characters replaced by one "-", hyphens trimmed from both ends, at most 64 characters. It
// returns "" when the name holds no ASCII letter or digit.
func DeriveSlug(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			if b.Len() >= maxSlugLen {
				break
			}
			continue
		}
		dash = true
	}
	return strings.TrimRight(b.String(), "-")
}

// slugFor returns the explicit slug when one is given, else one derived from name.
func slugFor(explicit *string, name string) (string, error) {
	if explicit != nil {
		return checkSlug(*explicit)
	}
	if s := DeriveSlug(name); s != "" {
		return s, nil
	}
	return "", failure.InvalidField("invalid_request", "slug",
		"cannot be derived from the name (it has no ASCII letter or digit); give one")
}

// cleanGroups trims the group names, drops duplicates and checks their number and length.
func cleanGroups(in []string) ([]string, error) {
	if len(in) > maxGroups {
		return nil, failure.InvalidField("invalid_request", "groups", fmt.Sprintf("must hold at most %d groups", maxGroups))
	}
	out := make([]string, 0, len(in))
	seen := make(map[string]bool, len(in))
	for i, g := range in {
		field := fmt.Sprintf("groups[%d]", i)
		g, err := cleanText(field, g, maxNameLen, false)
		if err != nil {
			return nil, err
		}
		if g == "" {
			return nil, failure.InvalidField("invalid_request", field, "must not be empty")
		}
		if !seen[g] {
			seen[g] = true
			out = append(out, g)
		}
	}
	return out, nil
}

// maxRawAttributesDepth bounds how deeply raw_attributes may nest (the object itself is level
// 1), the same bound the HTTP layer puts on a whole body.
const maxRawAttributesDepth = 32

// parseRawAttributes checks that raw is a JSON object of at most 16 KiB (compacted) and
// decodes it keeping numbers exact (json.Number), so that large integers survive. It also
// decodes it the way the store reads it back (numbers as float64), and refuses what that read
// could not return: a number beyond float64 (1e999999) would otherwise be stored and then fail
// every read of the user.
func parseRawAttributes(raw json.RawMessage) (map[string]any, error) {
	const field = "raw_attributes"
	var compact bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return nil, failure.InvalidField("invalid_request", field, "must be a JSON object")
	}
	if compact.Len() > maxRawAttributes {
		return nil, failure.InvalidField("invalid_request", field, fmt.Sprintf("must be at most %d bytes encoded", maxRawAttributes))
	}
	if bytes.Equal(compact.Bytes(), []byte("null")) {
		return map[string]any{}, nil
	}
	dec := json.NewDecoder(&compact)
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, failure.InvalidField("invalid_request", field, "must be a JSON object")
	}
	if err := checkDocument(field, m, 1); err != nil {
		return nil, err
	}
	return m, nil
}

// checkDocument walks a decoded document and refuses numbers that do not fit a float64 and
// nesting deeper than maxRawAttributesDepth, naming the path of the offending value.
func checkDocument(path string, v any, depth int) error {
	switch v := v.(type) {
	case map[string]any:
		if depth > maxRawAttributesDepth {
			return failure.InvalidField("invalid_request", path, fmt.Sprintf("is nested more than %d levels deep", maxRawAttributesDepth))
		}
		for k, e := range v {
			if err := checkDocument(path+"."+k, e, depth+1); err != nil {
				return err
			}
		}
	case []any:
		if depth > maxRawAttributesDepth {
			return failure.InvalidField("invalid_request", path, fmt.Sprintf("is nested more than %d levels deep", maxRawAttributesDepth))
		}
		for i, e := range v {
			if err := checkDocument(fmt.Sprintf("%s[%d]", path, i), e, depth+1); err != nil {
				return err
			}
		}
	case json.Number:
		if _, err := strconv.ParseFloat(v.String(), 64); err != nil {
			return failure.InvalidField("invalid_request", path, "is a number too large to store (it must fit a 64-bit float)")
		}
	}
	return nil
}

// dedupeIDs returns ids without duplicates, in first-seen order.
func dedupeIDs(ids []string) []string {
	out := make([]string, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
