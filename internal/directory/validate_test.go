package directory_test

import (
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/failure"
)

func TestNormalizeEmail(t *testing.T) {
	valid := []struct{ in, want string }{
		{"alice@example.com", "alice@example.com"},
		{"  Alice@Example.COM \t", "Alice@example.com"}, // trimmed; domain lower-cased, local part kept
		{"a.b+tag@Sub.Example.co.uk", "a.b+tag@sub.example.co.uk"},
		{"o'neil_x-y@xn--bcher-kva.example", "o'neil_x-y@xn--bcher-kva.example"},
		{"josé@example.com", "josé@example.com"}, // SMTPUTF8 local parts are real addresses
		// International domains are kept in their IDNA ASCII form, whatever form was typed.
		{"alice@bücher.de", "alice@xn--bcher-kva.de"},
		{"alice@BÜCHER.de.", "alice@xn--bcher-kva.de"},
		{"alice@bu\u0308cher.de", "alice@xn--bcher-kva.de"},
		{"Alice@XN--BCHER-KVA.DE", "Alice@xn--bcher-kva.de"},
		{"\u212aim@example.com", "\u212aim@example.com"}, // kept as typed; its key is its own
		{strings.Repeat("l", 64) + "@example.com", strings.Repeat("l", 64) + "@example.com"},
	}
	for _, c := range valid {
		got, err := directory.NormalizeEmail("email", c.in)
		if err != nil || got != c.want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	invalid := []string{
		"", "   ", "plain", "@example.com", "alice@", "alice@example", "a@@example.com", "a@b@example.com",
		"Alice <alice@example.com>", "<alice@example.com>", `"alice smith"@example.com`, "alice@example.com (home)",
		"al ice@example.com", "alice@-example.com", "alice@example-.com", "alice@exa..mple.com", "alice@exa_mple.com",
		"alice@[192.0.2.1]", "alice@192.0.2.1", "alice@b\u00fc_cher.de", ".alice@example.com", "alice.@example.com",
		"alice@example.com\nBcc: x@example.com", "ali\u202ece@example.com", "=?utf-8?q?x?= <a@example.com>", strings.Repeat("l", 65) + "@example.com",
		"a@" + strings.Repeat("d", 63) + "." + strings.Repeat("d", 63) + "." + strings.Repeat("d", 63) + "." + strings.Repeat("d", 60) + ".com",
		"a@" + strings.Repeat("d", 64) + ".com",
	}
	for _, in := range invalid {
		got, err := directory.NormalizeEmail("email", in)
		if err == nil {
			t.Errorf("NormalizeEmail(%q) = %q, want an error", in, got)
			continue
		}
		wantFailure(t, err, failure.Invalid, "invalid_email", "email")
	}
}

// TestCheckNewEmailRefusesLookalikes: new accounts may not have addresses that pass for
// another's, unless the project allows them; the error names the field.
func TestCheckNewEmailRefusesLookalikes(t *testing.T) {
	for _, in := range []string{"\u212aim@acme.example", "b\u0130ll@acme.example", "\u0131ris@acme.example",
		"\u017fam@acme.example", "\uff41da@acme.example", "o\ufb00ice@acme.example", "p\u0430ypal@acme.example",
		"b\u03bfb@acme.example", "kim@xn--pypal-4ve.example"} {
		e, err := directory.NormalizeEmail("email", in)
		if err != nil {
			t.Fatalf("NormalizeEmail(%q): %v", in, err)
		}
		wantFailure(t, directory.CheckNewEmail("email", e, false), failure.Invalid, "invalid_email", "email")
		if err := directory.CheckNewEmail("email", e, true); err != nil {
			t.Errorf("CheckNewEmail(%q) with look-alikes allowed: %v", in, err)
		}
	}
	for _, in := range []string{"Kim@Acme.example", "jos\u00e9@example.com", "\u0438\u0432\u0430\u043d@example.com",
		"alice@xn--bcher-kva.de"} {
		if err := directory.CheckNewEmail("email", in, false); err != nil {
			t.Errorf("CheckNewEmail(%q) = %v, want accepted", in, err)
		}
	}
}

func TestNormalizePhone(t *testing.T) {
	valid := []struct{ in, want string }{
		{"+14155552671", "+14155552671"},
		{" +1 (415) 555-2671 ", "+14155552671"},
		{"+44 20 7946 0958", "+442079460958"},
		{"+49.30.123456", "+4930123456"},
		{"+12345678", "+12345678"},               // 8 digits
		{"+123456789012345", "+123456789012345"}, // 15 digits
	}
	for _, c := range valid {
		got, err := directory.NormalizePhone("phone_id", c.in)
		if err != nil || got != c.want {
			t.Errorf("NormalizePhone(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	invalid := []string{
		"", "+", "14155552671", "004414155552671", "+0123456789", "+1234567", "+1234567890123456",
		"+1415abc2671", "+1 415 555 2671 ext 3", "++14155552671", "+1/415/5552671", "+１４１５５５５２６７１",
	}
	for _, in := range invalid {
		got, err := directory.NormalizePhone("phone_id", in)
		if err == nil {
			t.Errorf("NormalizePhone(%q) = %q, want an error", in, got)
			continue
		}
		wantFailure(t, err, failure.Invalid, "invalid_phone", "phone_id")
	}
}

func TestNormalizeDomain(t *testing.T) {
	valid := []struct{ in, want string }{
		{"example.com", "example.com"},
		{" Example.COM ", "example.com"},
		{"a-b.sub.example.com", "a-b.sub.example.com"},
		{"xn--bcher-kva.de", "xn--bcher-kva.de"},
		{"example.com.", "example.com"}, // the fully qualified form
		{"123.example.com", "123.example.com"},
		{strings.Repeat("a", 63) + ".com", strings.Repeat("a", 63) + ".com"},
	}
	for _, c := range valid {
		got, err := directory.NormalizeDomain("domain", c.in)
		if err != nil || got != c.want {
			t.Errorf("NormalizeDomain(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	long := strings.Repeat(strings.Repeat("a", 62)+".", 4) + "com" // 255 characters
	invalid := []string{
		"", "localhost", "-example.com", "example-.com", "exa..com", ".example.com", "exa_mple.com",
		"exa mple.com", "bücher.de", "192.0.2.1", "example.123", strings.Repeat("a", 64) + ".com", long,
		"example.com..", "*.example.com", "https://example.com",
	}
	for _, in := range invalid {
		got, err := directory.NormalizeDomain("domain", in)
		if err == nil {
			t.Errorf("NormalizeDomain(%q) = %q, want an error", in, got)
			continue
		}
		wantFailure(t, err, failure.Invalid, "invalid_domain", "domain")
	}
}

func TestDeriveSlug(t *testing.T) {
	cases := []struct{ in, want string }{
		{"Admin", "admin"},
		{"Super Admin!", "super-admin"},
		{"  --Billing__Read--  ", "billing-read"},
		{"read:users", "read-users"},
		{"Café Owner", "caf-owner"},
		{"管理者", ""},
		{strings.Repeat("ab ", 40), strings.TrimSuffix(strings.Repeat("ab-", 22), "-")[:64]},
	}
	for _, c := range cases {
		if got := directory.DeriveSlug(c.in); got != c.want {
			t.Errorf("DeriveSlug(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
