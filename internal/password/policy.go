package password

import (
	"fmt"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/latchkey-dev/latchkey/internal/failure"
)

// The length rules (NIST SP 800-63B §3.1.1.2, OWASP ASVS 5.0 §6.2): a minimum, a generous
// maximum, and no composition rules. Lengths count Unicode code points after Normalize, so that
// "é" is one character however it was typed.
const (
	// MinLength is the smallest minimum a caller may ask of Check: 8 where a second factor is
	// required, callers pass 15 where the password is the only factor.
	MinLength = 8
	// MaxLength is the longest password accepted, in code points: long enough for any
	// passphrase, short enough that nobody needs more.
	MaxLength = 128
	// MaxBytes is the longest input looked at at all, in bytes, before normalisation. A password
	// of MaxLength code points is at most 512 bytes of UTF-8 once normalised; typed input can be
	// longer (NFKC composes some sequences, such as Hangul jamo, into one code point), so the
	// guard leaves room. Anything beyond it is refused before normalising or hashing, so a
	// 1 MB "password" costs the server nothing.
	MaxBytes = 4096
)

// Normalize returns the form of a password that is checked, hashed and compared: its NFKC
// normalisation (RFC 8265's OpaqueString profile does the same), so that the same password typed
// on two keyboards ("ﬁ" or "fi", full-width or ASCII digits, a precomposed "é" or "e" with a
// combining accent) is the same password. Nothing else changes: no trimming and no case folding,
// as both would make passwords weaker than the user believes.
func Normalize(password string) string {
	return norm.NFKC.String(password)
}

// Check reports whether a new password has an acceptable length: between minLen (raised to
// MinLength when lower) and MaxLength code points after Normalize. It is for choosing a
// password; logins call Verify, which accepts whatever was stored.
func Check(password string, minLen int) error {
	minLen = max(minLen, MinLength)
	if len(password) > MaxBytes {
		return errTooLong()
	}
	n := utf8.RuneCountInString(Normalize(password))
	switch {
	case n < minLen:
		return failure.InvalidField("password_too_short", "password",
			fmt.Sprintf("must be at least %d characters long (at most %d)", minLen, MaxLength))
	case n > MaxLength:
		return errTooLong()
	}
	return nil
}

func errTooLong() error {
	return failure.InvalidField("password_too_long", "password",
		fmt.Sprintf("must be at most %d characters long", MaxLength))
}
