package secretbox

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// KeySize is the size of a master key: 32 bytes (AES-256).
const KeySize = 32

// Ciphertext layout, version 1 (offsets in bytes):
//
//	0   version          1   = 1
//	1   master key id    8   first 8 bytes of SHA-256(master key)
//	9   wrapped data key 60  AES-256-GCM(master key, data key, aad = bytes 0..9): nonce 12 | 32 | tag 16
//	69  payload          28+ AES-256-GCM(data key, plaintext, aad = caller's aad):  nonce 12 | n  | tag 16
//
// The wrap's associated data is the version and key id, so neither can be changed without the
// wrap failing. The payload is bound only to its own data key and the caller's aad, which is why
// Rewrap can replace the header without re-encrypting the payload.
const (
	version1       = 1
	idSize         = 8
	gcmOverhead    = 12 + 16 // random nonce + tag (cipher.NewGCMWithRandomNonce)
	wrapAADSize    = 1 + idSize
	wrappedKeySize = KeySize + gcmOverhead
	headerSize     = wrapAADSize + wrappedKeySize
	minSize        = headerSize + gcmOverhead
)

var (
	// ErrDecrypt is every failure to open a ciphertext: truncated, garbage, tampered with,
	// sealed with other associated data, or wrapped by a master key the ring lacks.
	ErrDecrypt = errors.New("secretbox: cannot decrypt")
	// ErrUnknownKey narrows ErrDecrypt: the ciphertext is wrapped by a master key that is not in
	// the ring (an error that is ErrUnknownKey is also ErrDecrypt).
	ErrUnknownKey = errors.New("secretbox: unknown master key")
)

// unknownKeyError is both ErrUnknownKey and ErrDecrypt: a corrupted key id is indistinguishable
// from a missing key, and a caller that only asks "did it open?" must not have to know both.
type unknownKeyError struct{ id string }

func (e *unknownKeyError) Error() string {
	return "secretbox: cannot decrypt: master key " + e.id + " is not in the key ring"
}

func (e *unknownKeyError) Is(target error) bool {
	return target == ErrUnknownKey || target == ErrDecrypt
}

// masterKey is one master key as a ready cipher, so that no call sets one up again.
type masterKey struct {
	id   [idSize]byte
	aead cipher.AEAD
}

// Keyring holds master keys; the first is current (seals), all open. It is immutable and safe
// for concurrent use. Make one with NewKeyring.
type Keyring struct {
	keys []masterKey
	// derive is a pseudo-random key extracted from the current master key, from which DeriveKey
	// expands keys for other purposes; the ring keeps no raw master key.
	derive []byte
}

// NewKeyring returns a key ring of keys, the first of which is current. Each key must be exactly
// KeySize bytes and appear once; the ring keeps no reference to the slices.
func NewKeyring(keys ...[]byte) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("a key ring needs at least one master key")
	}
	r := &Keyring{keys: make([]masterKey, 0, len(keys))}
	for i, key := range keys {
		if len(key) != KeySize {
			return nil, fmt.Errorf("master key %d of %d is %d bytes, want %d", i+1, len(keys), len(key), KeySize)
		}
		id := keyID(key)
		for j, prev := range r.keys {
			// Equal ids mean equal keys (or a 64-bit collision): either way lookups would be ambiguous.
			if prev.id == id {
				return nil, fmt.Errorf("master key %d of %d repeats key %d (id %x)", i+1, len(keys), j+1, id)
			}
		}
		aead, err := newAEAD(key)
		if err != nil {
			return nil, fmt.Errorf("master key %d of %d: %w", i+1, len(keys), err)
		}
		r.keys = append(r.keys, masterKey{id: id, aead: aead})
	}
	prk, err := hkdf.Extract(sha256.New, keys[0], []byte("latchkey secretbox derive"))
	if err != nil {
		return nil, fmt.Errorf("derive from the current master key: %w", err)
	}
	r.derive = prk
	return r, nil
}

// DeriveKey returns a 32-byte key for purpose, derived from the current master key (HKDF-SHA256),
// so that the same master key gives every instance the same key and keys for different purposes
// are independent. A master key rotation changes every derived key.
func (k *Keyring) DeriveKey(purpose string) ([]byte, error) {
	key, err := hkdf.Expand(sha256.New, k.derive, purpose, KeySize)
	if err != nil {
		return nil, fmt.Errorf("derive a key for %s: %w", purpose, err)
	}
	return key, nil
}

// CurrentID returns the id of the master key that seals: the first 16 hex digits of its SHA-256.
func (k *Keyring) CurrentID() string { return hex.EncodeToString(k.keys[0].id[:]) }

// String describes the ring by key ids only, so printing or logging a ring never shows a key.
func (k *Keyring) String() string {
	return fmt.Sprintf("secretbox.Keyring(current %s, %d keys)", k.CurrentID(), len(k.keys))
}

// Seal encrypts plaintext under a fresh data key wrapped by the current master key. aad is
// authenticated but not stored: Open needs the same aad, which ties a ciphertext to its place
// (e.g. the row id) so it cannot be copied into another.
func (k *Keyring) Seal(plaintext, aad []byte) ([]byte, error) {
	dek := make([]byte, KeySize)
	if _, err := rand.Read(dek); err != nil {
		return nil, fmt.Errorf("secretbox: generate a data key: %w", err)
	}
	payload, err := newAEAD(dek)
	if err != nil {
		return nil, fmt.Errorf("secretbox: %w", err)
	}
	current := &k.keys[0]
	wrapAAD := wrapAADFor(current.id)
	out := make([]byte, 0, minSize+len(plaintext))
	out = append(out, wrapAAD[:]...)
	out = current.aead.Seal(out, nil, dek, wrapAAD[:])
	return payload.Seal(out, nil, plaintext, aad), nil
}

// Open decrypts a ciphertext made by Seal with the same aad. Every failure is ErrDecrypt; a
// ciphertext wrapped by a master key missing from the ring is also ErrUnknownKey.
func (k *Keyring) Open(ciphertext, aad []byte) ([]byte, error) {
	key, err := k.wrappingKey(ciphertext)
	if err != nil {
		return nil, err
	}
	dek, err := key.unwrap(ciphertext)
	if err != nil {
		return nil, err
	}
	payload, err := newAEAD(dek)
	if err != nil {
		return nil, fmt.Errorf("secretbox: %w", err)
	}
	plaintext, err := payload.Open(nil, nil, ciphertext[headerSize:], aad)
	if err != nil {
		return nil, fmt.Errorf("%w: the payload does not authenticate (tampered with, or sealed with other associated data)", ErrDecrypt)
	}
	return plaintext, nil
}

// Rewrap returns ciphertext with its data key re-wrapped under the current master key, and
// whether anything changed (false when it already was). The payload is not re-encrypted, so
// no aad is needed; the data key's wrap is checked either way, so a rotation also finds
// ciphertexts that no longer open.
func (k *Keyring) Rewrap(ciphertext []byte) ([]byte, bool, error) {
	from, err := k.wrappingKey(ciphertext)
	if err != nil {
		return nil, false, err
	}
	dek, err := from.unwrap(ciphertext)
	if err != nil {
		return nil, false, err
	}
	current := &k.keys[0]
	if from == current {
		return ciphertext, false, nil
	}
	wrapAAD := wrapAADFor(current.id)
	out := make([]byte, 0, len(ciphertext))
	out = append(out, wrapAAD[:]...)
	out = current.aead.Seal(out, nil, dek, wrapAAD[:])
	return append(out, ciphertext[headerSize:]...), true, nil
}

// KeyID returns the id of the master key that wraps ciphertext, without needing any key: it
// tells which keys stored data still depends on. Malformed input is ErrDecrypt.
func KeyID(ciphertext []byte) (string, error) {
	id, err := parseHeader(ciphertext)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(id), nil
}

// GenerateKey returns a new random master key read from random (nil = crypto/rand).
func GenerateKey(random io.Reader) ([]byte, error) {
	if random == nil {
		random = rand.Reader
	}
	key := make([]byte, KeySize)
	if _, err := io.ReadFull(random, key); err != nil {
		return nil, fmt.Errorf("generate a master key: %w", err)
	}
	return key, nil
}

// EncodeKey returns key in standard base64, the form ParseKeys and key files read.
func EncodeKey(key []byte) string { return base64.StdEncoding.EncodeToString(key) }

// wrappingKey checks ciphertext's framing and returns the ring's key that wraps it.
func (k *Keyring) wrappingKey(ciphertext []byte) (*masterKey, error) {
	id, err := parseHeader(ciphertext)
	if err != nil {
		return nil, err
	}
	for i := range k.keys {
		if bytes.Equal(k.keys[i].id[:], id) {
			return &k.keys[i], nil
		}
	}
	return nil, &unknownKeyError{id: hex.EncodeToString(id)}
}

// unwrap returns the data key of ciphertext, whose framing wrappingKey has checked.
func (m *masterKey) unwrap(ciphertext []byte) ([]byte, error) {
	dek, err := m.aead.Open(nil, nil, ciphertext[wrapAADSize:headerSize], ciphertext[:wrapAADSize])
	if err != nil {
		return nil, fmt.Errorf("%w: the data key does not authenticate under master key %x (tampered with or corrupt)", ErrDecrypt, m.id)
	}
	return dek, nil
}

// parseHeader checks the length and version of ciphertext and returns its master key id. Every
// later slice expression relies on the length checked here.
func parseHeader(ciphertext []byte) ([]byte, error) {
	if len(ciphertext) < minSize {
		return nil, fmt.Errorf("%w: %d bytes is shorter than the %d-byte minimum", ErrDecrypt, len(ciphertext), minSize)
	}
	if v := ciphertext[0]; v != version1 {
		return nil, fmt.Errorf("%w: unknown format version %d", ErrDecrypt, v)
	}
	return ciphertext[1:wrapAADSize], nil
}

// wrapAADFor returns the associated data of a data key's wrap: the header before it. It is a
// separate array because GCM forbids the associated data to overlap the output being appended.
func wrapAADFor(id [idSize]byte) [wrapAADSize]byte {
	var aad [wrapAADSize]byte
	aad[0] = version1
	copy(aad[1:], id[:])
	return aad
}

// keyID is the first 8 bytes of SHA-256(key): enough to tell a ring's keys apart, and one-way,
// so stored ciphertexts and logs can name a key without revealing it.
func keyID(key []byte) [idSize]byte {
	sum := sha256.Sum256(key)
	return [idSize]byte(sum[:idSize])
}

// newAEAD returns AES-256-GCM with random 96-bit nonces that Seal prepends and Open reads, so
// no nonce is ever chosen by this package.
func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCMWithRandomNonce(block)
}
