package mailbox

import (
	"strings"
	"testing"
)

// TestKeyMergesOnlyTheSameMailbox is the table of look-alikes and case variants: those that name
// the victim's mailbox (ASCII case, IDNA forms of the domain, a trailing dot) share its key;
// every Unicode look-alike of the local part has a key of its own.
func TestKeyMergesOnlyTheSameMailbox(t *testing.T) {
	same := map[string][]string{
		"kim@acme.example": {"KIM@acme.example", "Kim@ACME.EXAMPLE", "kim@acme.example.", " kim@Acme.Example "},
		"jan@xn--bcher-kva.example": {"jan@bücher.example", "jan@BÜCHER.example", "JAN@xn--bcher-kva.example.",
			"jan@XN--BCHER-KVA.example", "jan@bu\u0308cher.example"},
		// Full-width letters in the domain are the same DNS name (UTS #46 maps them).
		"ada@acme.example": {"ada@\uff41cme.example"},
	}
	for key, variants := range same {
		for _, v := range variants {
			if got := Key(v); got != key {
				t.Errorf("Key(%q) = %q, want %q", v, got, key)
			}
		}
	}
	others := map[string][]string{
		"kim@acme.example":    {"\u212Aim@acme.example", "\u212Aim@ACME.example"},            // KELVIN SIGN
		"bill@acme.example":   {"b\u0130ll@acme.example", "B\u0130LL@acme.example"},          // dotted capital I
		"iris@acme.example":   {"\u0131r\u0131s@acme.example"},                               // dotless i
		"sam@acme.example":    {"\u017fam@acme.example"},                                     // long s
		"office@acme.example": {"o\ufb00ice@acme.example", "of\ufb01ce@acme.example"},        // ligatures ff, fi
		"ada@acme.example":    {"\uff41da@acme.example", "\uff21DA@acme.example"},            // full-width
		"paypal@acme.example": {"p\u0430yp\u0430l@acme.example", "\u0440aypal@acme.example"}, // Cyrillic а, р
		"bob@acme.example":    {"b\u03bfb@acme.example"},                                     // Greek omicron
		"eve@acme.example":    {"e\u0301ve@acme.example", "\u00e9ve@acme.example"},           // accents are other letters
	}
	for victim, lookalikes := range others {
		for _, l := range lookalikes {
			if got := Key(l); got == Key(victim) {
				t.Errorf("Key(%q) = %q: the look-alike finds %s", l, got, victim)
			}
		}
	}
	// Non-ASCII local parts keep every character but A–Z as typed: no Unicode case folding.
	if got := Key("Ωmega@Acme.example"); got != "Ωmega@acme.example" {
		t.Errorf("Key = %q", got)
	}
	// An invalid IDN keeps a key (nothing stored can have it).
	if got := Key("a@-bad-.example"); got != "a@-bad-.example" {
		t.Errorf("Key = %q", got)
	}
}

// TestKeyOfEveryStorableOldAddressIsUnchanged checks what the migration relies on: before
// this package, stored domains were lower-case ASCII letters, digits and hyphens, and for them
// the domain's key is the domain itself; only a local part with non-ASCII letters can get a new
// key, which the migration recomputes.
func TestKeyOfEveryStorableOldAddressIsUnchanged(t *testing.T) {
	for _, a := range []string{"kim@acme.example", "x@a-b.c0", "ann@xn--bcher-kva.example", "a@ab--cd.example",
		"a@xn--zz.example", "o'brien+tag@sub.acme.example"} {
		if got := Key(a); got != strings.ToLower(a) {
			t.Errorf("Key(%q) = %q, want the old key %q", a, got, strings.ToLower(a))
		}
	}
}

func TestVetRefusesLookalikesForNewAccounts(t *testing.T) {
	refused := map[string]Problem{
		"\u212Aim@acme.example":       Compatibility,
		"\uff41da@acme.example":       Compatibility,
		"o\ufb00ice@acme.example":     Compatibility,
		"\u017fam@acme.example":       Compatibility,
		"e\u0301ve@acme.example":      Compatibility, // decomposed: NFKC composes it
		"ada@\uff41cme.example":       Compatibility,
		"b\u0130ll@acme.example":      FoldsToASCII,
		"\u0131r\u0131s@acme.example": FoldsToASCII,
		"p\u0430ypal@acme.example":    MixedScript,
		"b\u03bfb@acme.example":       MixedScript,
		"kim@p\u0430ypal.example":     MixedScript,
		"kim@xn--pypal-4ve.example":   MixedScript, // the A-label of p\u0430ypal
	}
	for addr, want := range refused {
		if got := Vet(addr); got != want {
			t.Errorf("Vet(%q) = %q, want %q", addr, got, want)
		}
	}
	for _, ok := range []string{"Kim@Acme.example", "\u00e9ve@acme.example", "\u0438\u0432\u0430\u043d@acme.example",
		"jan@b\u00fccher.example", "\u5c71\u7530\u305f\u308d\u3046@acme.example", "\u03b1\u03bb\u03c6\u03b1@acme.example",
		"kim@acme.example.", "user.name+tag-1@acme.example"} {
		if got := Vet(ok); got != "" {
			t.Errorf("Vet(%q) = %q, want accepted", ok, got)
		}
	}
}

func FuzzKey(f *testing.F) {
	for _, s := range []string{"kim@acme.example", "\u212Aim@acme.example", "a@b\u00fccher.example.", "@", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k := Key(s)
		if Key(k) != k {
			t.Errorf("Key is not idempotent: %q -> %q -> %q", s, k, Key(k))
		}
		_ = Vet(s)
	})
}
