package password

import (
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/failure"
)

func TestCheckLength(t *testing.T) {
	const short, long = "password_too_short", "password_too_long"
	for _, c := range []struct {
		name     string
		password string
		minLen   int
		code     string // "" for accepted
	}{
		{"7 ASCII", strings.Repeat("a", 7), 8, short},
		{"8 ASCII", strings.Repeat("a", 8), 8, ""},
		{"128 ASCII", strings.Repeat("a", 128), 8, ""},
		{"129 ASCII", strings.Repeat("a", 129), 8, long},
		{"empty", "", 8, short},
		// Code points, not bytes: é is 2 bytes, 語 3, 😀 4.
		{"7 é (14 bytes)", strings.Repeat("é", 7), 8, short},
		{"8 é", strings.Repeat("é", 8), 8, ""},
		{"8 語", strings.Repeat("語", 8), 8, ""},
		{"7 😀 (28 bytes)", strings.Repeat("😀", 7), 8, short},
		{"8 😀", strings.Repeat("😀", 8), 8, ""},
		{"128 😀 (512 bytes)", strings.Repeat("😀", 128), 8, ""},
		{"129 😀", strings.Repeat("😀", 129), 8, long},
		{"128 語", strings.Repeat("語", 128), 8, ""},
		{"129 語", strings.Repeat("語", 129), 8, long},
		// Counted after NFKC: "ﬁ" is two code points, e + combining accent is one.
		{"4 ﬁ ligatures = 8", strings.Repeat("ﬁ", 4), 8, ""},
		{"7 decomposed é (14 code points typed)", strings.Repeat("e\u0301", 7), 8, short},
		{"64 decomposed é", strings.Repeat("e\u0301", 64), 8, ""},
		{"65 ﬁ ligatures = 130", strings.Repeat("ﬁ", 65), 8, long},
		// The caller's minimum: 15 for a password-only account, never below 8.
		{"14 with min 15", strings.Repeat("a", 14), 15, short},
		{"15 with min 15", strings.Repeat("a", 15), 15, ""},
		{"7 with min 0", strings.Repeat("a", 7), 0, short},
		{"8 with min 0", strings.Repeat("a", 8), 0, ""},
		{"1 MB", strings.Repeat("a", 1<<20), 8, long},
		// No composition rules, and spaces count.
		{"8 spaces", strings.Repeat(" ", 8), 8, ""},
	} {
		err := Check(c.password, c.minLen)
		if c.code == "" {
			if err != nil {
				t.Errorf("%s: Check = %v, want nil", c.name, err)
			}
			continue
		}
		fe, ok := failure.As(err)
		if !ok || fe.Kind != failure.Invalid || fe.Code != c.code || fe.Field != "password" {
			t.Errorf("%s: Check = %#v, want an Invalid %s on field password", c.name, err, c.code)
		}
	}
}

func TestCheckMessagesSayTheLimits(t *testing.T) {
	for _, c := range []struct {
		password string
		minLen   int
		want     string
	}{
		{"short", 8, "at least 8"},
		{"still short", 15, "at least 15"},
		{strings.Repeat("a", 129), 8, "at most 128"},
	} {
		err := Check(c.password, c.minLen)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Check(%d chars, %d) = %v, want a message with %q", len(c.password), c.minLen, err, c.want)
		}
	}
}
