package botcheck

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Proof-of-work limits.
//
// The widget finds the secret number by trying 0, 1, 2, ... in parallel Web Workers, so a
// challenge costs on average MaxNumber/2 SHA-256 hashes and at most MaxNumber. A browser does
// roughly 1–2 million hashes a second per worker, so DefaultMaxNumber (100,000) costs a person
// 25–50 ms on average and at most 50–100 ms on one core: invisible. Native code is faster: Solve
// does ~4.5 million hashes a second on one core of this project's machines (BenchmarkSolve:
// ~11 ms a solution at the default), so a bot pays ~5–10 ms of CPU per accepted request. The
// proof of work is a price on volume, not a wall, and it goes with rate limits, never instead
// of them. Raise MaxNumber to raise the price; MaxMaxNumber (10 million, up to ~10 s on one
// slow core) is the ceiling beyond which people would wait too long.
const (
	DefaultMaxNumber int64 = 100_000
	MaxMaxNumber     int64 = 10_000_000
	DefaultTTL             = 5 * time.Minute
	MaxTTL                 = time.Hour
	// MaxPayloadSize bounds the base64 payload before anything is decoded: the widget's is
	// about 350 bytes.
	MaxPayloadSize = 4 << 10
	// MinKeySize is the shortest HMAC key accepted: the key is all that stops anyone from
	// minting their own easy challenges.
	MinKeySize = 32
)

// Algorithm is the only ALTCHA algorithm issued and accepted.
const Algorithm = "SHA-256"

// saltBytes of randomness start every salt (24 hex characters; the widget wants at least 10).
const saltBytes = 12

// Spender records that a challenge has been accepted, so that each is accepted once. Spend
// returns first=true for the first call with a key and false for every later one, atomically
// across all instances that share the store; it may forget a key after expires, when the
// challenge could no longer verify anyway. The database implements it; MemorySpender serves
// tests and a single instance.
type Spender interface {
	Spend(ctx context.Context, key string, expires time.Time) (first bool, err error)
}

// PoWConfig configures the proof of work. Key is required and must be at least MinKeySize
// random bytes, kept secret and shared by all instances; Spent is required. MaxNumber
// defaults to DefaultMaxNumber, TTL to DefaultTTL, Now to time.Now and Rand to crypto/rand.
type PoWConfig struct {
	Key       []byte
	MaxNumber int64
	TTL       time.Duration
	Now       func() time.Time
	Rand      io.Reader
	Spent     Spender
}

// PoW issues and verifies proof-of-work challenges in the format of the ALTCHA widget
// (altcha.org, the "v1" challenge: SHA-256 of a salt and a secret number, signed with
// HMAC-SHA-256), which widgets v1 and v2 solve natively and widget v3 through its legacy path.
type PoW struct {
	key       []byte
	maxNumber int64
	ttl       time.Duration
	now       func() time.Time
	rand      io.Reader
	spent     Spender
}

// NewPoW returns the proof of work, or an error that names the unsafe or missing setting.
func NewPoW(c PoWConfig) (*PoW, error) {
	if len(c.Key) < MinKeySize {
		return nil, fmt.Errorf("botcheck: the proof-of-work key must be at least %d bytes, got %d", MinKeySize, len(c.Key))
	}
	if c.Spent == nil {
		return nil, errors.New("botcheck: the proof of work needs a Spender, or a solved challenge could be replayed")
	}
	if c.MaxNumber == 0 {
		c.MaxNumber = DefaultMaxNumber
	}
	if c.MaxNumber < 1 || c.MaxNumber > MaxMaxNumber {
		return nil, fmt.Errorf("botcheck: the proof-of-work MaxNumber must be between 1 and %d, got %d", MaxMaxNumber, c.MaxNumber)
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.TTL < time.Second || c.TTL > MaxTTL {
		return nil, fmt.Errorf("botcheck: the proof-of-work TTL must be between 1s and %s, got %s", MaxTTL, c.TTL)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	return &PoW{key: append([]byte(nil), c.Key...), maxNumber: c.MaxNumber, ttl: c.TTL, now: c.Now,
		rand: c.Rand, spent: c.Spent}, nil
}

// Challenge is what GET /api/v1/protect/challenge answers, in the widget's field names. The
// JSON carries the bound twice, as "maxnumber" (altcha-lib for JS, the reference) and as
// "maxNumber" (altcha-lib-go): the widget reads either.
type Challenge struct {
	Algorithm string
	Challenge string // hex SHA-256 of Salt followed by the secret number in decimal
	MaxNumber int64
	Salt      string // random hex, then "?expires=<unix seconds>&"
	Signature string // hex HMAC-SHA-256 of Challenge under the server's key
}

type challengeJSON struct {
	Algorithm      string `json:"algorithm"`
	Challenge      string `json:"challenge"`
	MaxNumberLower int64  `json:"maxnumber"`
	MaxNumber      int64  `json:"maxNumber"`
	Salt           string `json:"salt"`
	Signature      string `json:"signature"`
}

// MarshalJSON writes the widget's field names.
func (c Challenge) MarshalJSON() ([]byte, error) {
	return json.Marshal(challengeJSON{Algorithm: c.Algorithm, Challenge: c.Challenge, MaxNumberLower: c.MaxNumber,
		MaxNumber: c.MaxNumber, Salt: c.Salt, Signature: c.Signature})
}

// UnmarshalJSON reads a challenge as any ALTCHA server writes it.
func (c *Challenge) UnmarshalJSON(b []byte) error {
	var j challengeJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*c = Challenge{Algorithm: j.Algorithm, Challenge: j.Challenge, MaxNumber: j.MaxNumber, Salt: j.Salt, Signature: j.Signature}
	if c.MaxNumber == 0 {
		c.MaxNumber = j.MaxNumberLower
	}
	return nil
}

// Challenge makes a new challenge. It stores nothing: the signature and the expiry in the
// salt make it self-contained, and Verify's Spender makes it single-use.
func (p *PoW) Challenge() (Challenge, error) {
	var raw [saltBytes]byte
	if _, err := io.ReadFull(p.rand, raw[:]); err != nil {
		return Challenge{}, fmt.Errorf("botcheck: make a salt: %w", err)
	}
	number, err := uniform(p.rand, uint64(p.maxNumber)+1)
	if err != nil {
		return Challenge{}, fmt.Errorf("botcheck: pick a number: %w", err)
	}
	// The & closes the parameters so that no digit can move between expires and the number
	// (CVE-2025-68113).
	salt := hex.EncodeToString(raw[:]) + "?expires=" + strconv.FormatInt(p.now().Add(p.ttl).Unix(), 10) + "&"
	sum := hashSolution(salt, int64(number))
	challenge := hex.EncodeToString(sum[:])
	return Challenge{Algorithm: Algorithm, Challenge: challenge, MaxNumber: p.maxNumber, Salt: salt,
		Signature: hex.EncodeToString(p.sign(challenge))}, nil
}

// payload is what the widget posts back, base64-encoded: the challenge's fields and the number
// it found. Other fields ("took", widget v1's "test") are allowed and ignored, except that a
// test-mode payload is refused.
type payload struct {
	Algorithm string `json:"algorithm"`
	Challenge string `json:"challenge"`
	// Number must be a JSON number: a string could carry part of the salt and defeat the &
	// delimiter (the altcha-lib 2.10.0 fix). Decoding into int64 refuses strings, fractions,
	// exponents and anything beyond 64 bits.
	Number    *int64 `json:"number"`
	Salt      string `json:"salt"`
	Signature string `json:"signature"`
	Test      bool   `json:"test"`
}

// Verify accepts a payload once: it must be a solution of a challenge this server signed
// with its key, not expired, and not accepted before. A refusal is bot_check_failed (403);
// the description says "expired" or "already used" only after the signature and the
// solution have been checked, and nothing more specific otherwise. Any other error is the
// Spender's and means no verdict.
func (p *PoW) Verify(ctx context.Context, encoded string) error {
	if len(encoded) == 0 || len(encoded) > MaxPayloadSize {
		return errInvalid(fmt.Errorf("payload of %d bytes", len(encoded)))
	}
	raw, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return errInvalid(errors.New("payload is not base64"))
	}
	var pl payload
	if err := json.Unmarshal(raw, &pl); err != nil {
		return errInvalid(errors.New("payload is not the expected JSON"))
	}
	switch {
	case pl.Test:
		return errInvalid(errors.New("test-mode payload"))
	case pl.Algorithm != Algorithm:
		return errInvalid(errors.New("unsupported algorithm"))
	case pl.Number == nil || *pl.Number < 0 || *pl.Number > p.maxNumber:
		// The signed challenge fixes the number, so a larger one can never match; refusing it
		// here keeps the hashed input short and the work bounded. A MaxNumber lowered since
		// the challenge was issued refuses the larger numbers for at most one TTL.
		return errInvalid(errors.New("number missing or out of range"))
	}
	challenge, ok := decodeHex32(pl.Challenge)
	if !ok {
		return errInvalid(errors.New("malformed challenge"))
	}
	signature, ok := decodeHex32(pl.Signature)
	if !ok {
		return errInvalid(errors.New("malformed signature"))
	}
	if !hmac.Equal(signature, p.sign(pl.Challenge)) {
		return errInvalid(errors.New("bad signature"))
	}
	// The signature binds the challenge, and the challenge binds the salt and the number.
	sum := hashSolution(pl.Salt, *pl.Number)
	if subtle.ConstantTimeCompare(sum[:], challenge) != 1 {
		return errInvalid(errors.New("wrong number or altered salt"))
	}
	expires, ok := parseSalt(pl.Salt)
	if !ok {
		return errInvalid(errors.New("salt not of this server's form"))
	}
	if !p.now().Before(expires) {
		return refused("the proof of work has expired: solve a new challenge", nil)
	}
	first, err := p.spent.Spend(ctx, pl.Challenge, expires)
	if err != nil {
		return fmt.Errorf("botcheck: record the spent challenge: %w", err)
	}
	if !first {
		return refused("the proof of work was already used: solve a new challenge", nil)
	}
	return nil
}

// Solve finds the number of a challenge by brute force, as the widget does, and returns the
// payload the widget would post. It is a reference solver for tests (of this package and of
// the handlers that use it), not for production: it is single-threaded and uncancellable.
func Solve(ch Challenge) (string, error) {
	if ch.Algorithm != Algorithm {
		return "", fmt.Errorf("botcheck: cannot solve algorithm %q", ch.Algorithm)
	}
	want, ok := decodeHex32(ch.Challenge)
	if !ok {
		return "", errors.New("botcheck: the challenge is not a hex SHA-256")
	}
	maxNumber := ch.MaxNumber
	if maxNumber <= 0 {
		maxNumber = 1_000_000 // the widget's default
	}
	start := time.Now()
	buf := []byte(ch.Salt)
	for n := int64(0); n <= maxNumber; n++ {
		buf = strconv.AppendInt(buf[:len(ch.Salt)], n, 10)
		if sum := sha256.Sum256(buf); subtle.ConstantTimeCompare(sum[:], want) == 1 {
			b, err := json.Marshal(struct {
				Algorithm string `json:"algorithm"`
				Challenge string `json:"challenge"`
				Number    int64  `json:"number"`
				Salt      string `json:"salt"`
				Signature string `json:"signature"`
				Took      int64  `json:"took"`
			}{ch.Algorithm, ch.Challenge, n, ch.Salt, ch.Signature, time.Since(start).Milliseconds()})
			if err != nil {
				return "", fmt.Errorf("botcheck: encode the payload: %w", err)
			}
			return base64.StdEncoding.EncodeToString(b), nil
		}
	}
	return "", fmt.Errorf("botcheck: no number up to %d solves the challenge", maxNumber)
}

func (p *PoW) sign(challenge string) []byte {
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte(challenge))
	return m.Sum(nil)
}

func hashSolution(salt string, number int64) [sha256.Size]byte {
	return sha256.Sum256(strconv.AppendInt([]byte(salt), number, 10))
}

// decodeHex32 decodes 64 lowercase hex digits, the only spelling this server writes, so that
// one challenge has one spelling and one Spender key.
func decodeHex32(s string) ([]byte, bool) {
	if len(s) != 2*sha256.Size || strings.ToLower(s) != s {
		return nil, false
	}
	b, err := hex.DecodeString(s)
	return b, err == nil
}

// parseSalt returns the expiry of a salt of exactly the form Challenge writes:
// 24 lowercase hex digits, "?expires=", a Unix time in seconds, "&".
func parseSalt(salt string) (time.Time, bool) {
	const prefix = 2 * saltBytes
	if len(salt) < prefix {
		return time.Time{}, false
	}
	head, rest := salt[:prefix], salt[prefix:]
	if _, err := hex.DecodeString(head); err != nil || strings.ToLower(head) != head {
		return time.Time{}, false
	}
	rest, ok := strings.CutPrefix(rest, "?expires=")
	if !ok {
		return time.Time{}, false
	}
	digits, ok := strings.CutSuffix(rest, "&")
	if !ok || len(digits) == 0 || len(digits) > 12 || digits[0] == '0' {
		return time.Time{}, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return time.Time{}, false
		}
	}
	sec, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(sec, 0), true
}

// uniform returns a uniformly random integer in [0, n), n > 0, by rejection sampling.
func uniform(r io.Reader, n uint64) (uint64, error) {
	threshold := -n % n // 2^64 mod n: below it, v % n would favour small values
	var b [8]byte
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, err
		}
		if v := binary.BigEndian.Uint64(b[:]); v >= threshold {
			return v % n, nil
		}
	}
}

func errInvalid(cause error) error {
	return refused("the proof of work is not valid: solve a new challenge", cause)
}
