package password

import (
	"bytes"
	"encoding/base64"
	"errors"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

func newHasher(t testing.TB) *Hasher {
	t.Helper()
	h, err := New(DefaultParams(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// argon2idWith returns the PHC string of password under p, as another server (or an older
// configuration of this one) would have stored it.
func argon2idWith(p Params, password string) string {
	salt := bytes.Repeat([]byte{7}, int(p.SaltLen))
	return encodeArgon2id(p, salt, argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen))
}

var phc = regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashRoundTrip(t *testing.T) {
	h := newHasher(t)
	const pw = "correct horse battery staple"
	enc, err := h.Hash(pw)
	if err != nil {
		t.Fatal(err)
	}
	if !phc.MatchString(enc) {
		t.Fatalf("Hash = %q, want the PHC argon2id format with the default parameters", enc)
	}
	ok, rehash, err := h.Verify(enc, pw)
	if !ok || rehash || err != nil {
		t.Fatalf("Verify(right password) = %v, %v, %v; want true, false, nil", ok, rehash, err)
	}
	again, err := h.Hash(pw)
	if err != nil {
		t.Fatal(err)
	}
	if again == enc {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
}

func TestHashUsesInjectedRandomness(t *testing.T) {
	salt := []byte("0123456789abcdef")
	h, err := New(DefaultParams(), bytes.NewReader(salt))
	if err != nil {
		t.Fatal(err)
	}
	enc, err := h.Hash("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if want := "$" + base64.RawStdEncoding.EncodeToString(salt) + "$"; !strings.Contains(enc, want) {
		t.Fatalf("Hash = %q, want the salt %q from the reader", enc, want)
	}
	// The reader is now empty: the next salt cannot be read.
	if _, err := h.Hash("another password"); err == nil {
		t.Fatal("Hash with exhausted randomness succeeded")
	}
}

func TestVerifyWrongPassword(t *testing.T) {
	h := newHasher(t)
	enc, err := h.Hash("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{"correct horse battery stapl", "Correct horse battery staple",
		" correct horse battery staple", "correct horse battery staple ", ""} {
		ok, rehash, err := h.Verify(enc, pw)
		if ok || rehash || err != nil {
			t.Errorf("Verify(%q) = %v, %v, %v; want false, false, nil", pw, ok, rehash, err)
		}
	}
}

func TestNormalize(t *testing.T) {
	for _, c := range []struct{ a, b string }{
		{"ﬁnancial", "financial"},        // U+FB01 LATIN SMALL LIGATURE FI
		{"ｐａｓｓ１２３", "pass123"},           // full-width letters and digits
		{"cafe\u0301", "caf\u00e9"},      // combining acute accent vs precomposed é
		{"\u1100\u1161\u11a8", "\uac01"}, // Hangul jamo vs the syllable
		{"x\u00a0y", "x y"},              // no-break space
	} {
		if Normalize(c.a) != Normalize(c.b) {
			t.Errorf("Normalize(%q) = %q, Normalize(%q) = %q; want equal", c.a, Normalize(c.a), c.b, Normalize(c.b))
		}
	}
	// Nothing but NFKC: no trimming, no case folding.
	for _, s := range []string{" padded ", "MiXeD", "tab\there"} {
		if got := Normalize(s); got != s {
			t.Errorf("Normalize(%q) = %q, want it unchanged", s, got)
		}
	}
}

func TestVerifyComparesNormalizedForms(t *testing.T) {
	h := newHasher(t)
	enc, err := h.Hash("ﬁnancial ２０２４ cafe\u0301")
	if err != nil {
		t.Fatal(err)
	}
	ok, _, err := h.Verify(enc, "financial 2024 caf\u00e9")
	if !ok || err != nil {
		t.Fatalf("Verify(equivalent after NFKC) = %v, %v; want true, nil", ok, err)
	}
	ok, _, err = h.Verify(enc, "FINANCIAL 2024 CAF\u00c9")
	if ok || err != nil {
		t.Fatalf("Verify(other case) = %v, %v; want false, nil", ok, err)
	}
}

func TestVerifyBcrypt(t *testing.T) {
	h := newHasher(t)
	const pw = "correct horse battery staple"
	gen, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"$2a$", "$2b$", "$2y$"} {
		enc := prefix + string(gen[4:])
		ok, rehash, err := h.Verify(enc, pw)
		if !ok || !rehash || err != nil {
			t.Errorf("Verify(%s hash, right password) = %v, %v, %v; want true, true, nil", prefix, ok, rehash, err)
		}
		ok, rehash, err = h.Verify(enc, pw+"!")
		if ok || rehash || err != nil {
			t.Errorf("Verify(%s hash, wrong password) = %v, %v, %v; want false, false, nil", prefix, ok, rehash, err)
		}
	}
}

func TestVerifyBcryptOfUnnormalizedPassword(t *testing.T) {
	// An imported hash of a password that its system did not normalise (e + combining accent).
	h := newHasher(t)
	typed := "cafe\u0301 au lait"
	gen, err := bcrypt.GenerateFromPassword([]byte(typed), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	ok, rehash, err := h.Verify(string(gen), typed)
	if !ok || !rehash || err != nil {
		t.Fatalf("Verify(typed as hashed) = %v, %v, %v; want true, true, nil", ok, rehash, err)
	}
}

func TestVerifyReportsWeakerArgon2idForRehash(t *testing.T) {
	h := newHasher(t)
	const pw = "correct horse battery staple"
	def := DefaultParams()
	for _, c := range []struct {
		name   string
		p      Params
		rehash bool
	}{
		{"less memory", Params{Memory: 4096, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}, true},
		{"fewer passes", Params{Memory: def.Memory, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, true},
		{"shorter key", Params{Memory: def.Memory, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 16}, true},
		{"shorter salt", Params{Memory: def.Memory, Time: 2, Threads: 1, SaltLen: 8, KeyLen: 32}, true},
		{"more lanes", Params{Memory: def.Memory, Time: 2, Threads: 4, SaltLen: 16, KeyLen: 32}, false},
		{"stronger", Params{Memory: 32 * 1024, Time: 3, Threads: 1, SaltLen: 16, KeyLen: 32}, false},
	} {
		enc := argon2idWith(c.p, pw)
		ok, rehash, err := h.Verify(enc, pw)
		if !ok || rehash != c.rehash || err != nil {
			t.Errorf("%s: Verify = %v, %v, %v; want true, %v, nil", c.name, ok, rehash, err, c.rehash)
		}
		ok, rehash, err = h.Verify(enc, "wrong")
		if ok || rehash || err != nil {
			t.Errorf("%s: Verify(wrong) = %v, %v, %v; want false, false, nil", c.name, ok, rehash, err)
		}
	}
}

func TestVerifyRefusesMalformedAndAbsurdHashes(t *testing.T) {
	h := newHasher(t)
	salt := base64.RawStdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 16))
	key := base64.RawStdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))
	argon := func(version, params, salt, key string) string {
		return "$argon2id$" + version + "$" + params + "$" + salt + "$" + key
	}
	good := argon("v=19", "m=19456,t=2,p=1", salt, key)
	if _, _, err := h.Verify(good, "x"); err != nil {
		t.Fatalf("the well-formed template is refused: %v", err)
	}
	bc, err := bcrypt.GenerateFromPassword([]byte("x"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for name, enc := range map[string]string{
		"empty":                   "",
		"plain text":              "hunter2hunter2",
		"argon2i":                 "$argon2i$v=19$m=19456,t=2,p=1$" + salt + "$" + key,
		"argon2d":                 "$argon2d$v=19$m=19456,t=2,p=1$" + salt + "$" + key,
		"version 16":              argon("v=16", "m=19456,t=2,p=1", salt, key),
		"no version":              "$argon2id$m=19456,t=2,p=1$" + salt + "$" + key,
		"no key":                  "$argon2id$v=19$m=19456,t=2,p=1$" + salt,
		"extra field":             good + "$x",
		"leading text":            "x" + good,
		"parameters reordered":    argon("v=19", "t=2,m=19456,p=1", salt, key),
		"parameter missing":       argon("v=19", "m=19456,t=2", salt, key),
		"extra parameter":         argon("v=19", "m=19456,t=2,p=1,data=eA", salt, key),
		"memory not a number":     argon("v=19", "m=lots,t=2,p=1", salt, key),
		"negative memory":         argon("v=19", "m=-1,t=2,p=1", salt, key),
		"memory overflows":        argon("v=19", "m=99999999999,t=2,p=1", salt, key),
		"memory 256 MiB + 1":      argon("v=19", "m=262145,t=2,p=1", salt, key),
		"memory 4 GiB":            argon("v=19", "m=4194303,t=2,p=1", salt, key),
		"memory below 8 KiB/lane": argon("v=19", "m=7,t=2,p=1", salt, key),
		"11 passes":               argon("v=19", "m=19456,t=11,p=1", salt, key),
		"a million passes":        argon("v=19", "m=19456,t=1000000,p=1", salt, key),
		"0 passes":                argon("v=19", "m=19456,t=0,p=1", salt, key),
		"0 lanes":                 argon("v=19", "m=19456,t=2,p=0", salt, key),
		"255 lanes":               argon("v=19", "m=19456,t=2,p=255", salt, key),
		"256 lanes":               argon("v=19", "m=19456,t=2,p=256", salt, key),
		"salt not base64":         argon("v=19", "m=19456,t=2,p=1", "!!!!", key),
		"salt padded":             argon("v=19", "m=19456,t=2,p=1", salt+"==", key),
		"salt of 4 bytes":         argon("v=19", "m=19456,t=2,p=1", "AQEBAQ", key),
		"empty key":               argon("v=19", "m=19456,t=2,p=1", salt, ""),
		"key of 8 bytes":          argon("v=19", "m=19456,t=2,p=1", salt, "AgICAgICAgI"),
		"huge":                    argon("v=19", "m=19456,t=2,p=1", salt, strings.Repeat("A", 1<<20)),
		"bcrypt 2x":               "$2x$" + string(bc[4:]),
		"bcrypt truncated":        string(bc[:40]),
		"bcrypt too long":         string(bc) + "A",
		"bcrypt cost 17":          "$2a$17$" + string(bc[7:]),
		"bcrypt cost 31":          "$2a$31$" + string(bc[7:]),
		"bcrypt cost 99":          "$2a$99$" + string(bc[7:]),
		"bcrypt cost letters":     "$2a$xx$" + string(bc[7:]),
		"bcrypt salt not base64":  string(bc[:7]) + strings.Repeat("!", 53),
	} {
		ok, rehash, err := h.Verify(enc, "x")
		if ok || rehash || err == nil {
			t.Errorf("%s: Verify = %v, %v, %v; want false, false, an error", name, ok, rehash, err)
			continue
		}
		if !errors.Is(err, ErrMalformedHash) {
			t.Errorf("%s: error %v does not wrap ErrMalformedHash", name, err)
		}
		if len(enc) > 10 && strings.Contains(err.Error(), enc[len(enc)-10:]) {
			t.Errorf("%s: error %q quotes the stored hash", name, err)
		}
	}
}

func TestNewRefusesWeakOrAbsurdParams(t *testing.T) {
	def := DefaultParams()
	with := func(f func(*Params)) Params { p := def; f(&p); return p }
	for name, p := range map[string]Params{
		"zero":          {},
		"1 MiB":         with(func(p *Params) { p.Memory = 1024 }),
		"7 MiB, t=2":    with(func(p *Params) { p.Memory = 7 * 1024 }),
		"19 MiB, t=1":   with(func(p *Params) { p.Time = 1 }),
		"512 MiB":       with(func(p *Params) { p.Memory = 512 * 1024 }),
		"t=20":          with(func(p *Params) { p.Time = 20 }),
		"no lanes":      with(func(p *Params) { p.Threads = 0 }),
		"4-byte salt":   with(func(p *Params) { p.SaltLen = 4 }),
		"8-byte key":    with(func(p *Params) { p.KeyLen = 8 }),
		"1024-byte key": with(func(p *Params) { p.KeyLen = 1024 }),
	} {
		if _, err := New(p, nil); err == nil {
			t.Errorf("%s: New(%+v) succeeded", name, p)
		}
	}
	for name, p := range map[string]Params{
		"default":     def,
		"46 MiB, t=1": with(func(p *Params) { p.Memory, p.Time = 46*1024, 1 }),
		"7 MiB, t=5":  with(func(p *Params) { p.Memory, p.Time = 7*1024, 5 }),
	} {
		if _, err := New(p, nil); err != nil {
			t.Errorf("%s: New: %v", name, err)
		}
	}
}

func TestTooLongPasswordIsRefusedBeforeHashing(t *testing.T) {
	h := newHasher(t)
	huge := strings.Repeat("a", 1<<20)
	if _, err := h.Hash(huge); err == nil {
		t.Fatal("Hash of a 1 MB password succeeded")
	}
	enc, err := h.Hash("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	ok, rehash, err := h.Verify(enc, huge)
	if ok || rehash || err != nil {
		t.Fatalf("Verify(1 MB password) = %v, %v, %v; want false, false, nil", ok, rehash, err)
	}
	h.DummyVerify(huge)
}

func TestDummyVerifyHashIsWellFormed(t *testing.T) {
	h := newHasher(t)
	// DummyVerify must do a full verification: its hash parses, carries the Hasher's
	// parameters, and matches nothing.
	ok, rehash, err := h.Verify(h.dummy, "")
	if ok || rehash || err != nil {
		t.Fatalf("Verify(dummy hash) = %v, %v, %v; want false, false, nil", ok, rehash, err)
	}
	if !phc.MatchString(h.dummy) {
		t.Fatalf("dummy hash %q does not carry the default parameters", h.dummy)
	}
	h.DummyVerify("correct horse battery staple")
}

// The cost of one hash and one verification at the default parameters; DESIGN.md's figure is
// 22 ms on one core.
func BenchmarkHash(b *testing.B) {
	h := newHasher(b)
	for b.Loop() {
		if _, err := h.Hash("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	h := newHasher(b)
	enc, err := h.Hash("correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if ok, _, err := h.Verify(enc, "correct horse battery staple"); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

func TestKind(t *testing.T) {
	for encoded, want := range map[string]string{
		"$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$a2V5": KindArgon2id,
		"$argon2":                       KindArgon2id,
		"$2b$12$abcdefghijklmnopqrstuv": "bcrypt-12",
		"$2a$10$":                       "bcrypt-10",
		"$2y$04$":                       "bcrypt-4",
		"$2b$17$":                       "", // above the accepted cost
		"$2b$xx$":                       "",
		"$1$md5$":                       "",
		"":                              "",
	} {
		if got := Kind(encoded); got != want {
			t.Errorf("Kind(%q) = %q, want %q", encoded, got, want)
		}
	}
}

// TestDummyVerifyKindMatchesNothing: the stand-in hashes accept no password, whatever the kind.
func TestDummyVerifyKindMatchesNothing(t *testing.T) {
	h, err := New(DefaultParams(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{KindArgon2id, "bcrypt-4", "bcrypt-5", "bcrypt-99", "nonsense"} {
		h.DummyVerifyKind(kind, "any password")
		h.DummyVerifyKind(kind, "")
	}
	d, err := h.bcryptDummy(4)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := h.bcryptDummy(4); again != d {
		t.Error("the bcrypt stand-in of a cost changes")
	}
	if ok, _, err := h.Verify(d, "any password"); ok || err != nil {
		t.Errorf("Verify(stand-in) = %v, %v", ok, err)
	}
}
