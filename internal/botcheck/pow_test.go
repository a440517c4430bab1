package botcheck

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/testclock"
)

var testKey = []byte("0123456789abcdef0123456789abcdef-test-key")

func newTestClock() *testclock.Clock {
	return testclock.New(time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC))
}

type powFixture struct {
	pow   *PoW
	clock *testclock.Clock
	spent *MemorySpender
}

// newFixture returns a PoW with a small MaxNumber, so that tests solve in microseconds, and a
// seeded random source, so that failures reproduce.
func newFixture(t testing.TB, maxNumber int64) powFixture {
	t.Helper()
	clock := newTestClock()
	spent := NewMemorySpender(clock.Now)
	p, err := NewPoW(PoWConfig{Key: testKey, MaxNumber: maxNumber, Now: clock.Now,
		Rand: rand.NewChaCha8([32]byte{1, 2, 3}), Spent: spent})
	if err != nil {
		t.Fatal(err)
	}
	return powFixture{pow: p, clock: clock, spent: spent}
}

func (f powFixture) solved(t testing.TB) (Challenge, string) {
	t.Helper()
	ch, err := f.pow.Challenge()
	if err != nil {
		t.Fatal(err)
	}
	payload, err := Solve(ch)
	if err != nil {
		t.Fatal(err)
	}
	return ch, payload
}

// edit decodes a payload, lets f change its fields and encodes it again.
func edit(t *testing.T, payload string, f func(m map[string]any)) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(strings.NewReader(string(raw)))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	f(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(out)
}

func encodeJSON(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func wantRefused(t *testing.T, err error, description string) {
	t.Helper()
	fe, ok := failure.As(err)
	if !ok || fe.Kind != failure.Forbidden || fe.Code != CodeFailed {
		t.Fatalf("got %v, want a Forbidden %s", err, CodeFailed)
	}
	if description != "" && !strings.Contains(fe.Description, description) {
		t.Fatalf("description %q, want it to say %q", fe.Description, description)
	}
}

// The hashed input is the salt followed by the number in decimal: a vector from
// altcha-lib-go's v1 tests, SHA-256("salt123").
func TestHashSolutionKnownAnswer(t *testing.T) {
	sum := hashSolution("salt", 123)
	if got, want := hex.EncodeToString(sum[:]), "c2fc6c6adf8ba0f575a35f48df52c0968a3dcd3c577c2769dc2f1035943b975e"; got != want {
		t.Fatalf("SHA-256(salt123) = %s, want %s", got, want)
	}
}

// The challenge JSON has exactly the fields the ALTCHA widget reads (altcha-org/altcha
// src/Altcha.svelte validateChallenge and solve; altcha-lib src/v1/types.ts), and meets the
// widget's own checks: a known algorithm, a challenge of at least 40 characters, a salt of at
// least 10, a signature.
func TestChallengeJSONMatchesALTCHA(t *testing.T) {
	f := newFixture(t, 1000)
	ch, err := f.pow.Challenge()
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(ch)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"algorithm", "challenge", "maxNumber", "maxnumber", "salt", "signature"}; !slices.Equal(keys, want) {
		t.Fatalf("challenge JSON fields %v, want %v (%s)", keys, want, b)
	}
	if m["algorithm"] != "SHA-256" || m["maxnumber"] != float64(1000) || m["maxNumber"] != float64(1000) {
		t.Fatalf("challenge JSON %s", b)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(ch.Challenge) || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(ch.Signature) {
		t.Fatalf("challenge %q, signature %q: want 64 lowercase hex digits each", ch.Challenge, ch.Signature)
	}
	// <random hex>?expires=<unix seconds>& — the form of altcha-lib's createChallenge since the
	// December 2025 salt-splicing advisory; the widget reads expires from it.
	want := regexp.MustCompile(`^[0-9a-f]{24}\?expires=` + strconv.FormatInt(f.clock.Now().Add(DefaultTTL).Unix(), 10) + `&$`)
	if !want.MatchString(ch.Salt) {
		t.Fatalf("salt %q, want %v", ch.Salt, want)
	}
	mac := hmac.New(sha256.New, testKey)
	mac.Write([]byte(ch.Challenge))
	if got := hex.EncodeToString(mac.Sum(nil)); got != ch.Signature {
		t.Fatalf("signature %s, want HMAC-SHA-256(key, challenge) = %s", ch.Signature, got)
	}
	var back Challenge
	if err := json.Unmarshal(b, &back); err != nil || back != ch {
		t.Fatalf("round trip: %+v, %v; want %+v", back, err, ch)
	}
	// A challenge from altcha-lib (JS) has only the lowercase field.
	if err := json.Unmarshal([]byte(`{"algorithm":"SHA-256","maxnumber":77}`), &back); err != nil || back.MaxNumber != 77 {
		t.Fatalf("maxnumber only: %+v, %v", back, err)
	}
}

// The payload is the widget's: base64 of {algorithm, challenge, number, salt, signature,
// took} (Altcha.svelte createAltchaPayload; Widget.svelte createPayloadV1 in v3).
func TestSolvePayloadIsTheWidgets(t *testing.T) {
	f := newFixture(t, 1000)
	ch, payload := f.solved(t)
	raw, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"algorithm", "challenge", "number", "salt", "signature", "took"} {
		if _, ok := m[k]; !ok {
			t.Errorf("payload %s lacks %q", raw, k)
		}
	}
	if m["challenge"] != ch.Challenge || m["salt"] != ch.Salt || m["signature"] != ch.Signature {
		t.Fatalf("payload %s does not echo the challenge %+v", raw, ch)
	}
}

func TestSolvedAcceptedOnce(t *testing.T) {
	f := newFixture(t, DefaultMaxNumber)
	_, payload := f.solved(t)
	ctx := context.Background()
	if err := f.pow.Verify(ctx, payload); err != nil {
		t.Fatalf("first Verify: %v", err)
	}
	wantRefused(t, f.pow.Verify(ctx, payload), "already used")
}

func TestConcurrentVerifyAcceptsOne(t *testing.T) {
	f := newFixture(t, 1000)
	_, payload := f.solved(t)
	var accepted, refusedN atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 50 {
		wg.Go(func() {
			<-start
			err := f.pow.Verify(context.Background(), payload)
			if err == nil {
				accepted.Add(1)
			} else if failure.IsKind(err, failure.Forbidden) {
				refusedN.Add(1)
			} else {
				t.Errorf("Verify: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if accepted.Load() != 1 || refusedN.Load() != 49 {
		t.Fatalf("accepted %d, refused %d; want 1 and 49", accepted.Load(), refusedN.Load())
	}
}

func TestExpiredRefused(t *testing.T) {
	f := newFixture(t, 1000)
	_, payload := f.solved(t)
	_, payload2 := f.solved(t)
	f.clock.Advance(DefaultTTL - time.Second)
	if err := f.pow.Verify(context.Background(), payload2); err != nil {
		t.Fatalf("just before expiry: %v", err)
	}
	f.clock.Advance(time.Second)
	wantRefused(t, f.pow.Verify(context.Background(), payload), "expired")
}

func TestForgedSignatureRefused(t *testing.T) {
	f := newFixture(t, 1000)
	_, payload := f.solved(t)

	// A challenge signed with another key, solved correctly.
	other, err := NewPoW(PoWConfig{Key: []byte("another key, 32 bytes or longer!!"), MaxNumber: 1000,
		Now: f.clock.Now, Rand: rand.NewChaCha8([32]byte{9}), Spent: NewMemorySpender(f.clock.Now)})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := other.Challenge()
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := Solve(ch)
	if err != nil {
		t.Fatal(err)
	}
	wantRefused(t, f.pow.Verify(context.Background(), foreign), "not valid")

	// The right challenge with a flipped signature bit.
	flipped := edit(t, payload, func(m map[string]any) {
		sig, _ := hex.DecodeString(m["signature"].(string))
		sig[0] ^= 1
		m["signature"] = hex.EncodeToString(sig)
	})
	wantRefused(t, f.pow.Verify(context.Background(), flipped), "not valid")

	// A challenge of the attacker's own making (an easy number, a far expiry), unsigned.
	salt := "000000000000000000000000?expires=9999999999&"
	sum := hashSolution(salt, 1)
	mine := encodeJSON(`{"algorithm":"SHA-256","challenge":"` + hex.EncodeToString(sum[:]) +
		`","number":1,"salt":"` + salt + `","signature":"` + strings.Repeat("0", 64) + `"}`)
	wantRefused(t, f.pow.Verify(context.Background(), mine), "not valid")

	// Nothing was recorded as spent, so the genuine payload still passes.
	if err := f.pow.Verify(context.Background(), payload); err != nil {
		t.Fatalf("genuine payload after forgeries: %v", err)
	}
}

func TestTamperedSaltRefused(t *testing.T) {
	f := newFixture(t, 1000)
	ch, payload := f.solved(t)
	later := strconv.FormatInt(f.clock.Now().Add(24*time.Hour).Unix(), 10)
	tampered := edit(t, payload, func(m map[string]any) {
		m["salt"] = regexp.MustCompile(`expires=\d+`).ReplaceAllString(ch.Salt, "expires="+later)
	})
	f.clock.Advance(DefaultTTL) // the genuine salt has expired; the altered one claims a day
	wantRefused(t, f.pow.Verify(context.Background(), tampered), "not valid")
}

// Moving the number's first digit into the salt hashes the same bytes, so the challenge and
// its signature still match; the salt no longer ends with the & delimiter and is refused
// (CVE-2025-68113). The same bytes with the number as a JSON string are refused too
// (altcha-lib 2.10.0).
func TestSpliceRefused(t *testing.T) {
	f := newFixture(t, 1000)
	var ch Challenge
	var number int64
	for {
		var payload string
		ch, payload = f.solved(t)
		raw, _ := base64.StdEncoding.DecodeString(payload)
		var pl payload2
		if err := json.Unmarshal(raw, &pl); err != nil {
			t.Fatal(err)
		}
		if number = pl.Number; number >= 10 {
			break
		}
	}
	digits := strconv.FormatInt(number, 10)
	rest, _ := strconv.ParseInt(digits[1:], 10, 64)
	spliced := encodeJSON(`{"algorithm":"SHA-256","challenge":"` + ch.Challenge + `","number":` +
		strconv.FormatInt(rest, 10) + `,"salt":"` + ch.Salt + digits[:1] + `","signature":"` + ch.Signature + `"}`)
	if digits[1] != '0' { // a leading zero would be dropped, and then the bytes differ anyway
		// The splice really does hash to the signed challenge: only the salt's form stops it.
		if sum := hashSolution(ch.Salt+digits[:1], rest); hex.EncodeToString(sum[:]) != ch.Challenge {
			t.Fatal("the spliced payload does not hash to the challenge: the test proves nothing")
		}
		wantRefused(t, f.pow.Verify(context.Background(), spliced), "not valid")
	} else {
		t.Fatalf("number %d: pick another seed", number)
	}
	cut := strings.TrimSuffix(ch.Salt, "&")
	asString := encodeJSON(`{"algorithm":"SHA-256","challenge":"` + ch.Challenge + `","number":"&` + digits +
		`","salt":"` + cut + `","signature":"` + ch.Signature + `"}`)
	wantRefused(t, f.pow.Verify(context.Background(), asString), "not valid")
}

type payload2 struct {
	Number int64 `json:"number"`
}

func TestWrongNumberRefused(t *testing.T) {
	f := newFixture(t, 1000)
	_, payload := f.solved(t)
	wrong := edit(t, payload, func(m map[string]any) {
		n, _ := m["number"].(json.Number).Int64()
		m["number"] = (n + 1) % 1001
	})
	wantRefused(t, f.pow.Verify(context.Background(), wrong), "not valid")
}

func TestNumberOutOfRangeRefused(t *testing.T) {
	f := newFixture(t, 1000)
	_, payload := f.solved(t)
	for _, n := range []any{-1, 1001, json.Number("9223372036854775807"), json.Number("1e3"),
		json.Number("123456789012345678901234567890"), json.Number("12.5"), "12", nil} {
		p := edit(t, payload, func(m map[string]any) {
			if n == nil {
				delete(m, "number")
			} else {
				m["number"] = n
			}
		})
		wantRefused(t, f.pow.Verify(context.Background(), p), "not valid")
	}
}

func TestWrongAlgorithmRefused(t *testing.T) {
	f := newFixture(t, 1000)
	_, payload := f.solved(t)
	for _, alg := range []string{"SHA-512", "SHA-1", "sha-256", "PBKDF2/SHA-256", ""} {
		p := edit(t, payload, func(m map[string]any) { m["algorithm"] = alg })
		wantRefused(t, f.pow.Verify(context.Background(), p), "not valid")
	}
}

func TestMalformedRefused(t *testing.T) {
	f := newFixture(t, 1000)
	ch, payload := f.solved(t)
	upper := edit(t, payload, func(m map[string]any) { m["challenge"] = strings.ToUpper(ch.Challenge) })
	testMode := edit(t, payload, func(m map[string]any) { m["test"] = true })
	for name, p := range map[string]string{
		"empty":             "",
		"not base64":        "not base64!",
		"not JSON":          encodeJSON("hello"),
		"JSON array":        encodeJSON(`[1,2,3]`),
		"JSON null":         encodeJSON(`null`),
		"trailing garbage":  base64.StdEncoding.EncodeToString(append(mustDecode(t, payload), "xyz"...)),
		"short challenge":   edit(t, payload, func(m map[string]any) { m["challenge"] = ch.Challenge[:40] }),
		"upper-case hex":    upper,
		"challenge not hex": edit(t, payload, func(m map[string]any) { m["challenge"] = strings.Repeat("zz", 32) }),
		"signature missing": edit(t, payload, func(m map[string]any) { delete(m, "signature") }),
		"wrong types":       edit(t, payload, func(m map[string]any) { m["salt"] = 12 }),
		"test mode":         testMode,
	} {
		t.Run(name, func(t *testing.T) {
			wantRefused(t, f.pow.Verify(context.Background(), p), "not valid")
		})
	}
	if err := f.pow.Verify(context.Background(), payload); err != nil {
		t.Fatalf("genuine payload after malformed ones: %v", err)
	}
}

func mustDecode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOversizeRefused(t *testing.T) {
	f := newFixture(t, 1000)
	_, payload := f.solved(t)
	big := edit(t, payload, func(m map[string]any) { m["padding"] = strings.Repeat("x", MaxPayloadSize) })
	wantRefused(t, f.pow.Verify(context.Background(), big), "not valid")
	// Unknown fields within the bound are fine: the widget adds "took", and may add more.
	small := edit(t, payload, func(m map[string]any) { m["padding"] = "x" })
	if err := f.pow.Verify(context.Background(), small); err != nil {
		t.Fatalf("payload with an extra field: %v", err)
	}
}

type failingSpender struct{}

func (failingSpender) Spend(context.Context, string, time.Time) (bool, error) {
	return false, errors.New("database is down")
}

// A store that cannot answer is no verdict: not a 403 the caller would show as the user's
// fault, and never a pass.
func TestSpenderErrorIsNoVerdict(t *testing.T) {
	clock := newTestClock()
	p, err := NewPoW(PoWConfig{Key: testKey, MaxNumber: 100, Now: clock.Now, Spent: failingSpender{}})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := p.Challenge()
	if err != nil {
		t.Fatal(err)
	}
	payload, err := Solve(ch)
	if err != nil {
		t.Fatal(err)
	}
	err = p.Verify(context.Background(), payload)
	if err == nil || failure.IsKind(err, failure.Forbidden) {
		t.Fatalf("Verify with a failing store: %v, want an internal error", err)
	}
}

func TestNewPoWRefusesUnsafeConfig(t *testing.T) {
	spent := NewMemorySpender(nil)
	for name, c := range map[string]PoWConfig{
		"no key":         {Spent: spent},
		"short key":      {Key: []byte("short"), Spent: spent},
		"no spender":     {Key: testKey},
		"negative max":   {Key: testKey, Spent: spent, MaxNumber: -1},
		"huge max":       {Key: testKey, Spent: spent, MaxNumber: MaxMaxNumber + 1},
		"tiny TTL":       {Key: testKey, Spent: spent, TTL: time.Millisecond},
		"TTL beyond max": {Key: testKey, Spent: spent, TTL: 2 * MaxTTL},
	} {
		if _, err := NewPoW(c); err == nil {
			t.Errorf("%s: NewPoW accepted %+v", name, c)
		}
	}
	p, err := NewPoW(PoWConfig{Key: testKey, Spent: spent})
	if err != nil {
		t.Fatal(err)
	}
	if p.maxNumber != DefaultMaxNumber || p.ttl != DefaultTTL {
		t.Fatalf("defaults: max %d, TTL %s", p.maxNumber, p.ttl)
	}
}

// The secret number is spread over the whole range, so that the work is what MaxNumber says.
func TestChallengeNumbersSpanTheRange(t *testing.T) {
	r := rand.NewChaCha8([32]byte{7})
	const n = 10
	seen := make(map[uint64]int)
	for range 10_000 {
		v, err := uniform(r, n)
		if err != nil {
			t.Fatal(err)
		}
		if v >= n {
			t.Fatalf("uniform(%d) = %d", n, v)
		}
		seen[v]++
	}
	for v := range uint64(n) {
		if seen[v] < 800 || seen[v] > 1200 {
			t.Fatalf("value %d drawn %d times in 10,000; want about 1,000", v, seen[v])
		}
	}
}

func BenchmarkChallenge(b *testing.B) {
	p, err := NewPoW(PoWConfig{Key: testKey, Spent: NewMemorySpender(nil)})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Challenge(); err != nil {
			b.Fatal(err)
		}
	}
}

type acceptAll struct{}

func (acceptAll) Spend(context.Context, string, time.Time) (bool, error) { return true, nil }

// BenchmarkVerify measures a successful Verify without its store (decode, HMAC, SHA-256, salt),
// so that one payload can be verified b.N times; BenchmarkMemorySpender measures the store.
func BenchmarkVerify(b *testing.B) {
	p, err := NewPoW(PoWConfig{Key: testKey, Spent: acceptAll{}})
	if err != nil {
		b.Fatal(err)
	}
	ch, err := p.Challenge()
	if err != nil {
		b.Fatal(err)
	}
	payload, err := Solve(ch)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Verify(ctx, payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyRefused measures the cheapest refusal an attacker can cause: a payload with a
// forged signature.
func BenchmarkVerifyRefused(b *testing.B) {
	p, err := NewPoW(PoWConfig{Key: testKey, Spent: acceptAll{}})
	if err != nil {
		b.Fatal(err)
	}
	ch, err := p.Challenge()
	if err != nil {
		b.Fatal(err)
	}
	ch.Signature = strings.Repeat("0", 64)
	payload, err := Solve(ch)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Verify(ctx, payload); err == nil {
			b.Fatal("forged payload accepted")
		}
	}
}

// BenchmarkSolve is the cost of a solution in native Go at DefaultMaxNumber (on average half
// the range): what a bot pays per request.
func BenchmarkSolve(b *testing.B) {
	p, err := NewPoW(PoWConfig{Key: testKey, Spent: acceptAll{}})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		ch, err := p.Challenge()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Solve(ch); err != nil {
			b.Fatal(err)
		}
	}
}
