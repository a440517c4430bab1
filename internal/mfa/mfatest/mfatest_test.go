package mfatest

import (
	"encoding/base32"
	"testing"
	"time"
)

// The codes of RFC 4226 Appendix D for RFC6238Key, for the counters 0 to 9.
var hotpVectors = []string{"755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"}

func TestHOTPMatchesRFC4226(t *testing.T) {
	for counter, want := range hotpVectors {
		if got := HOTP([]byte(RFC6238Key), uint64(counter), 6); got != want {
			t.Errorf("HOTP(counter %d) = %s, want %s", counter, got, want)
		}
	}
}

func TestTOTPMatchesRFC6238(t *testing.T) {
	secret := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte(RFC6238Key))
	for _, v := range RFC6238Vectors {
		at := time.Unix(v.Unix, 0).UTC()
		if got := TOTP([]byte(RFC6238Key), at, 8); got != v.Code {
			t.Errorf("TOTP(%d, 8 digits) = %s, want %s", v.Unix, got, v.Code)
		}
		if got := Code(t, secret, at); got != v.Code[2:] {
			t.Errorf("Code(%d) = %s, want %s (the vector's last 6 digits)", v.Unix, got, v.Code[2:])
		}
	}
}
