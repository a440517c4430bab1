package oidcprovider_test

import (
	"testing"

	"github.com/latchkey-dev/latchkey/internal/oidcprovider"
)

// TestBindingCookieName: a request id as the provider makes it names its own cookie by its
// first eight characters; anything else (short, not lowercase hex, characters a cookie name
// may not hold) gives the bare prefix, under which no cookie is ever set.
func TestBindingCookieName(t *testing.T) {
	for id, want := range map[string]string{
		"0a1b2c3d4e5f60718293a4b5c6d7e8f9": "__Host-lk_ar_0a1b2c3d",
		"0a1b2c3dffffffffffffffffffffffff": "__Host-lk_ar_0a1b2c3d", // a shared prefix shares the cookie: 2^-32 odds
		"0a1b2c3":                          "__Host-lk_ar_",
		"":                                 "__Host-lk_ar_",
		"0A1B2C3D4E5F60718293A4B5C6D7E8F9": "__Host-lk_ar_",
		"0a1b;c3d4e5f60718293a4b5c6d7e8f9": "__Host-lk_ar_",
		"0a1b c3d=; Path=/":                "__Host-lk_ar_",
	} {
		if got := oidcprovider.BindingCookieName(id); got != want {
			t.Errorf("BindingCookieName(%q) = %q, want %q", id, got, want)
		}
	}
}
