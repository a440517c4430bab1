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
		"alice@[192.0.2.1]", "alice@192.0.2.1", "alice@bücher.de", ".alice@example.com", "alice.@example.com",
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
