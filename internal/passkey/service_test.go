package passkey

import (
	"testing"

	"github.com/google/uuid"
)

func TestProviderName(t *testing.T) {
	for aaguid, want := range map[string]string{
		"fbfc3007-154e-4ecc-8c0b-6e020557d7bd": "iCloud Keychain",
		"ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4": "Google Password Manager",
		"08987058-cadc-4b81-b6e1-30de50dcbe96": "Windows Hello",
		"00000000-0000-0000-0000-000000000000": "Passkey",
		"3e0f8cd1-0f4d-4bb6-9a3a-8d3d3c1b5c00": "Passkey",
	} {
		id := uuid.MustParse(aaguid)
		if got := ProviderName(id[:]); got != want {
			t.Errorf("ProviderName(%s) = %q, want %q", aaguid, got, want)
		}
	}
	if got := ProviderName([]byte{1, 2, 3}); got != "Passkey" {
		t.Errorf("ProviderName of a malformed AAGUID = %q", got)
	}
}

func TestIdentifierKey(t *testing.T) {
	for in, want := range map[string]string{
		"":                 "",
		"  ":               "",
		" Ada@Example.com": "ada@example.com",
		"+1 555 555 0123":  "+15555550123",
		"+15555550123":     "+15555550123",
		"not-a-phone":      "not-a-phone",
	} {
		if got := IdentifierKey(in); got != want {
			t.Errorf("IdentifierKey(%q) = %q, want %q", in, got, want)
		}
	}
}
