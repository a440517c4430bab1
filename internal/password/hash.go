package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Params are argon2id's cost parameters and sizes. Each hash carries the ones it was made with
// (in its PHC string), so they can be raised later without invalidating stored hashes: Verify
// reports a hash made with weaker ones as needing a rehash.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes over the memory
	Threads uint8  // lanes (parallelism)
	SaltLen uint32 // bytes of random salt
	KeyLen  uint32 // bytes of derived key
}

// DefaultParams returns OWASP's recommended argon2id configuration (Password Storage Cheat
// Sheet): 19 MiB, two passes, one lane, which costs about 22 ms of one core here (DESIGN.md,
// performance rules), with a 16-byte salt and a 32-byte key.
func DefaultParams() Params {
	return Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// The bounds on the parameters a stored hash may carry. The stored hash decides how much work a
// verification does, so without bounds one crafted or corrupted row (m=4 GiB, t=1000, bcrypt
// cost 31) would let a single login attempt exhaust the server's memory or a core for hours.
const (
	maxMemory     = 256 * 1024 // KiB
	maxTime       = 10
	maxThreads    = 16
	minSaltLen    = 8 // RFC 9106's minimum
	maxSaltLen    = 64
	minKeyLen     = 16
	maxKeyLen     = 64
	maxBcryptCost = 16 // about 4 s of one core; imported hashes are normally 10 to 12
	// maxEncodedLen is longer than any hash within the bounds above; longer input is refused
	// before it is split or decoded.
	maxEncodedLen = 256
)

// The weakest configuration New accepts: OWASP's m=7 MiB, t=5 is its cheapest recommended point,
// and its other points keep memory × passes at or above 7168 × 5 KiB.
const (
	minMemory     = 7 * 1024 // KiB
	minMemoryTime = 7 * 1024 * 5
)

// ErrMalformedHash is wrapped by the errors of Verify for a stored hash it cannot use: not a
// PHC argon2id string or a bcrypt hash, or with parameters outside the bounds. It is the
// server's fault, never the user's, and is worth an alert: it means corrupt or tampered rows.
var ErrMalformedHash = errors.New("malformed password hash")

// Hasher makes and checks password hashes with one set of argon2id parameters.
type Hasher struct {
	p      Params
	random io.Reader
	// dummy is a well-formed hash with the Hasher's parameters that no password matches (its
	// key is all zeros); DummyVerify verifies against it.
	dummy string
	// bcryptDummies holds, by cost, bcrypt hashes of unknown passwords for DummyVerifyKind.
	bcryptDummies sync.Map
}

// New returns a Hasher that makes hashes with p and salts read from random (crypto/rand
// when nil). It refuses parameters weaker than OWASP's cheapest recommendation or beyond what Verify
// would accept, so that a server never stores hashes that it would itself refuse or that would
// be cheap to crack.
func New(p Params, random io.Reader) (*Hasher, error) {
	if err := checkParams(p.Memory, p.Time, p.Threads, p.SaltLen, p.KeyLen); err != nil {
		return nil, fmt.Errorf("argon2id parameters: %w", err)
	}
	if p.Memory < minMemory || uint64(p.Memory)*uint64(p.Time) < minMemoryTime {
		return nil, fmt.Errorf("argon2id parameters m=%d KiB, t=%d are weaker than the minimum (m ≥ %d KiB and m×t ≥ %d)",
			p.Memory, p.Time, minMemory, minMemoryTime)
	}
	if random == nil {
		random = rand.Reader
	}
	return &Hasher{
		p:      p,
		random: random,
		dummy:  encodeArgon2id(p, make([]byte, p.SaltLen), make([]byte, p.KeyLen)),
	}, nil
}

// Hash returns the PHC string of the normalised password under a fresh salt:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>, both in unpadded standard base64 (the format of
// libsodium and the reference argon2 tool). It does not check the password's length beyond
// MaxBytes: call Check first.
func (h *Hasher) Hash(password string) (string, error) {
	if len(password) > MaxBytes {
		return "", errTooLong()
	}
	salt := make([]byte, h.p.SaltLen)
	if _, err := io.ReadFull(h.random, salt); err != nil {
		return "", fmt.Errorf("read a password salt: %w", err)
	}
	key := argon2.IDKey([]byte(Normalize(password)), salt, h.p.Time, h.p.Memory, h.p.Threads, h.p.KeyLen)
	return encodeArgon2id(h.p, salt, key), nil
}

// Verify reports whether password matches the stored hash encoded, an argon2id PHC string with
// any parameters within the bounds, or a bcrypt hash ($2a$, $2b$, $2y$) of an imported user.
// needsRehash, reported only with ok, says the caller should store a new Hash of the password
// now that it is known: always for bcrypt, and for argon2id made with parameters weaker than
// the Hasher's. An error (wrapping ErrMalformedHash) means the stored hash is unusable.
//
// A password longer than MaxBytes does not match, without an error and without any hashing: no
// stored hash was made from one, and answering as for any wrong password (rather than with a
// validation error) keeps a known user's answer the same as DummyVerify's unknown user's.
func (h *Hasher) Verify(encoded, password string) (ok, needsRehash bool, err error) {
	if len(encoded) > maxEncodedLen {
		return false, false, fmt.Errorf("%w: longer than %d bytes", ErrMalformedHash, maxEncodedLen)
	}
	if len(password) > MaxBytes {
		return false, false, nil
	}
	switch {
	case strings.HasPrefix(encoded, "$argon2id$"):
		a, err := parseArgon2id(encoded)
		if err != nil {
			return false, false, err
		}
		key := argon2.IDKey([]byte(Normalize(password)), a.salt, a.time, a.memory, a.threads, uint32(len(a.key)))
		ok = subtle.ConstantTimeCompare(key, a.key) == 1
		weaker := a.memory < h.p.Memory || a.time < h.p.Time ||
			len(a.salt) < int(h.p.SaltLen) || len(a.key) < int(h.p.KeyLen)
		return ok, ok && weaker, nil
	case strings.HasPrefix(encoded, "$2a$"), strings.HasPrefix(encoded, "$2b$"), strings.HasPrefix(encoded, "$2y$"):
		ok, err := verifyBcrypt(encoded, password)
		return ok, ok, err
	default:
		return false, false, fmt.Errorf("%w: neither argon2id nor bcrypt", ErrMalformedHash)
	}
}

// DummyVerify does the work of one Verify against a hash with the Hasher's parameters that no
// password matches, and throws the answer away. A login for an unknown user calls it where a
// known user's would call Verify: otherwise the unknown user's answer would come about 22 ms
// sooner, and timing the login form would tell which accounts exist. Users still on imported
// bcrypt hashes take bcrypt's time until their first login rehashes them: DummyVerifyKind
// lets unknown users take it too, as often as known ones do.
func (h *Hasher) DummyVerify(password string) {
	_, _, _ = h.Verify(h.dummy, password)
}

// Kind names the work that verifying a stored hash costs: "argon2id", or "bcrypt-N" for a
// bcrypt hash of cost N. It reads only the start of encoded (the first 7 bytes are enough, so a
// store can group hashes by that prefix) and returns "" for anything else.
func Kind(encoded string) string {
	if strings.HasPrefix(encoded, "$argon2") {
		return KindArgon2id
	}
	for _, v := range []string{"$2a$", "$2b$", "$2y$"} {
		rest, ok := strings.CutPrefix(encoded, v)
		if !ok || len(rest) < 2 {
			continue
		}
		if cost, err := strconv.Atoi(rest[:2]); err == nil && cost >= bcrypt.MinCost && cost <= maxBcryptCost {
			return fmt.Sprintf("bcrypt-%d", cost)
		}
	}
	return ""
}

// KindArgon2id is the Kind of an argon2id hash.
const KindArgon2id = "argon2id"

// DummyVerifyKind does the work of verifying a hash of the kind (see Kind) and throws the
// answer away: for an unknown user, what a known user with such a hash would cost. bcrypt
// stand-in hashes are made once per cost, on first use; an unknown kind costs argon2id.
func (h *Hasher) DummyVerifyKind(kind, password string) {
	var cost int
	if _, err := fmt.Sscanf(kind, "bcrypt-%d", &cost); err != nil || cost < bcrypt.MinCost || cost > maxBcryptCost {
		h.DummyVerify(password)
		return
	}
	dummy, err := h.bcryptDummy(cost)
	if err != nil {
		h.DummyVerify(password)
		return
	}
	_, _ = verifyBcrypt(dummy, password)
}

// bcryptDummy returns a bcrypt hash of the cost of a random password nobody knows.
func (h *Hasher) bcryptDummy(cost int) (string, error) {
	if d, ok := h.bcryptDummies.Load(cost); ok {
		return d.(string), nil
	}
	secret := make([]byte, 32)
	if _, err := io.ReadFull(h.random, secret); err != nil {
		return "", fmt.Errorf("read a dummy password: %w", err)
	}
	b, err := bcrypt.GenerateFromPassword([]byte(base64.RawStdEncoding.EncodeToString(secret)), cost)
	if err != nil {
		return "", fmt.Errorf("make a dummy bcrypt hash: %w", err)
	}
	d, _ := h.bcryptDummies.LoadOrStore(cost, string(b))
	return d.(string), nil
}

// argon2idHash is a parsed PHC string.
type argon2idHash struct {
	memory, time uint32
	threads      uint8
	salt, key    []byte
}

func encodeArgon2id(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// parseArgon2id reads $argon2id$v=19$m=M,t=T,p=P$SALT$KEY strictly: the version x/crypto
// implements, the three parameters in this order and nothing else, and values within the
// bounds. Its errors never quote the hash.
func parseArgon2id(encoded string) (argon2idHash, error) {
	var a argon2idHash
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return a, fmt.Errorf("%w: not a PHC argon2id string", ErrMalformedHash)
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return a, fmt.Errorf("%w: unsupported argon2 version", ErrMalformedHash)
	}
	fields := strings.Split(parts[3], ",")
	if len(fields) != 3 {
		return a, fmt.Errorf("%w: want the parameters m, t and p", ErrMalformedHash)
	}
	var vals [3]uint64
	for i, name := range []string{"m=", "t=", "p="} {
		v, found := strings.CutPrefix(fields[i], name)
		if !found {
			return a, fmt.Errorf("%w: want the parameters m, t and p", ErrMalformedHash)
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return a, fmt.Errorf("%w: parameter %s not a number", ErrMalformedHash, name[:1])
		}
		vals[i] = n
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return a, fmt.Errorf("%w: salt not unpadded base64", ErrMalformedHash)
	}
	key, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil {
		return a, fmt.Errorf("%w: key not unpadded base64", ErrMalformedHash)
	}
	if vals[2] > maxThreads {
		return a, fmt.Errorf("%w: p=%d is above %d", ErrMalformedHash, vals[2], maxThreads)
	}
	a = argon2idHash{memory: uint32(vals[0]), time: uint32(vals[1]), threads: uint8(vals[2]), salt: salt, key: key}
	if err := checkParams(a.memory, a.time, a.threads, uint32(len(salt)), uint32(len(key))); err != nil {
		return argon2idHash{}, fmt.Errorf("%w: %w", ErrMalformedHash, err)
	}
	return a, nil
}

// checkParams reports parameters outside the bounds that any hash, stored or new, must keep.
func checkParams(memory, time uint32, threads uint8, saltLen, keyLen uint32) error {
	switch {
	case threads < 1 || threads > maxThreads:
		return fmt.Errorf("p=%d is outside 1..%d", threads, maxThreads)
	case memory < 8*uint32(threads) || memory > maxMemory: // argon2 needs 8 KiB per lane
		return fmt.Errorf("m=%d KiB is outside %d..%d", memory, 8*uint32(threads), maxMemory)
	case time < 1 || time > maxTime:
		return fmt.Errorf("t=%d is outside 1..%d", time, maxTime)
	case saltLen < minSaltLen || saltLen > maxSaltLen:
		return fmt.Errorf("salt of %d bytes is outside %d..%d", saltLen, minSaltLen, maxSaltLen)
	case keyLen < minKeyLen || keyLen > maxKeyLen:
		return fmt.Errorf("key of %d bytes is outside %d..%d", keyLen, minKeyLen, maxKeyLen)
	}
	return nil
}

// verifyBcrypt checks a bcrypt hash made elsewhere. The system it came from may not have
// normalised passwords, so when the NFKC form does not match and differs from what was typed,
// the typed form is tried too: a user who set "é" as e plus a combining accent elsewhere can
// still log in, and is then rehashed under the normalised form. bcrypt reads only the first 72
// bytes, as everywhere else.
func verifyBcrypt(encoded, password string) (bool, error) {
	const bcryptLen = 60 // $2b$, two digits of cost, $, 22 characters of salt and 31 of hash
	if len(encoded) != bcryptLen {
		return false, fmt.Errorf("%w: bcrypt hash of %d bytes, want %d", ErrMalformedHash, len(encoded), bcryptLen)
	}
	cost, err := bcrypt.Cost([]byte(encoded))
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrMalformedHash, err)
	}
	if cost > maxBcryptCost {
		return false, fmt.Errorf("%w: bcrypt cost %d is above %d", ErrMalformedHash, cost, maxBcryptCost)
	}
	candidates := []string{Normalize(password)}
	if candidates[0] != password {
		candidates = append(candidates, password)
	}
	for _, c := range candidates {
		err := bcrypt.CompareHashAndPassword([]byte(encoded), []byte(c))
		switch {
		case err == nil:
			return true, nil
		case !errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
			return false, fmt.Errorf("%w: %w", ErrMalformedHash, err)
		}
	}
	return false, nil
}
