package secretbox

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// testKey returns a fixed master key made of b, so that failures are reproducible.
func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func mustRing(t testing.TB, keys ...[]byte) *Keyring {
	t.Helper()
	r, err := NewKeyring(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustSeal(t testing.TB, r *Keyring, plaintext, aad []byte) []byte {
	t.Helper()
	ct, err := r.Seal(plaintext, aad)
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

func idOf(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:8])
}

func TestSealOpenRoundTrip(t *testing.T) {
	ring := mustRing(t, testKey(1), testKey(2))
	for _, tc := range []struct {
		name           string
		plaintext, aad []byte
	}{
		{"empty plaintext", nil, []byte("row-1")},
		{"no aad", []byte("private key"), nil},
		{"both", []byte("private key"), []byte("signing_keys/key_123")},
		{"256 bytes", bytes.Repeat([]byte{0xab}, 256), []byte("aad")},
		{"64 KiB", bytes.Repeat([]byte{7}, 64<<10), []byte("aad")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ct := mustSeal(t, ring, tc.plaintext, tc.aad)
			if len(ct) != len(tc.plaintext)+minSize {
				t.Errorf("ciphertext is %d bytes, want %d", len(ct), len(tc.plaintext)+minSize)
			}
			if len(tc.plaintext) > 0 && bytes.Contains(ct, tc.plaintext) {
				t.Error("ciphertext contains the plaintext")
			}
			got, err := ring.Open(ct, tc.aad)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.plaintext) {
				t.Errorf("Open = %x, want %x", got, tc.plaintext)
			}
			if id, err := KeyID(ct); err != nil || id != ring.CurrentID() {
				t.Errorf("KeyID = %q, %v; want %q", id, err, ring.CurrentID())
			}
			// A fresh data key and nonces each time: equal secrets must not look equal at rest.
			if again := mustSeal(t, ring, tc.plaintext, tc.aad); bytes.Equal(again, ct) {
				t.Error("two Seals of the same plaintext are equal")
			}
		})
	}
}

// TestDocumentedLayout builds a ciphertext by hand from the layout documented in secretbox.go,
// so a change to the format cannot pass unnoticed: stored secrets must keep opening.
func TestDocumentedLayout(t *testing.T) {
	master, dek := testKey(1), testKey(9)
	gcm := func(key []byte) cipher.AEAD {
		block, err := aes.NewCipher(key)
		if err != nil {
			t.Fatal(err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			t.Fatal(err)
		}
		return aead
	}
	id, _ := hex.DecodeString(idOf(master))
	header := append([]byte{1}, id...)
	wrapNonce, payloadNonce := bytes.Repeat([]byte{3}, 12), bytes.Repeat([]byte{4}, 12)
	ct := append([]byte(nil), header...)
	ct = append(ct, wrapNonce...)
	ct = gcm(master).Seal(ct, wrapNonce, dek, header)
	ct = append(ct, payloadNonce...)
	ct = gcm(dek).Seal(ct, payloadNonce, []byte("hello"), []byte("aad"))

	got, err := mustRing(t, master).Open(ct, []byte("aad"))
	if err != nil || string(got) != "hello" {
		t.Fatalf("Open of a hand-built ciphertext = %q, %v", got, err)
	}
	sealed := mustSeal(t, mustRing(t, master), []byte("hello"), nil)
	if !bytes.Equal(sealed[:9], header) || len(sealed) != len(ct) {
		t.Errorf("Seal's header %x (length %d), want %x (length %d)", sealed[:9], len(sealed), header, len(ct))
	}
}

func TestOpenRejects(t *testing.T) {
	ring := mustRing(t, testKey(1))
	ct := mustSeal(t, ring, []byte("a secret"), []byte("row-1"))
	version2 := append([]byte{2}, ct[1:]...)
	for _, tc := range []struct {
		name string
		ct   []byte
		aad  []byte
	}{
		{"other aad", ct, []byte("row-2")},
		{"no aad", ct, nil},
		{"aad with a byte more", ct, []byte("row-10")},
		{"nil ciphertext", nil, []byte("row-1")},
		{"empty ciphertext", []byte{}, []byte("row-1")},
		{"one byte", []byte{1}, []byte("row-1")},
		{"header only", ct[:headerSize], []byte("row-1")},
		{"one byte short of the minimum", ct[:minSize-1], []byte("row-1")},
		{"last byte cut", ct[:len(ct)-1], []byte("row-1")},
		{"byte appended", append(append([]byte(nil), ct...), 0), []byte("row-1")},
		{"unknown version", version2, []byte("row-1")},
		{"zeros", make([]byte, len(ct)), []byte("row-1")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ring.Open(tc.ct, tc.aad)
			if !errors.Is(err, ErrDecrypt) || got != nil {
				t.Fatalf("Open = %q, %v; want ErrDecrypt", got, err)
			}
		})
	}
	// Every truncation, not only the interesting ones.
	for n := range len(ct) {
		if _, err := ring.Open(ct[:n], []byte("row-1")); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("Open of the first %d bytes: %v; want ErrDecrypt", n, err)
		}
	}
}

func TestEveryBitFlipIsRefused(t *testing.T) {
	ring := mustRing(t, testKey(1), testKey(2))
	aad := []byte("row-1")
	ct := mustSeal(t, ring, []byte("a secret worth protecting"), aad)
	for i := range len(ct) * 8 {
		flipped := append([]byte(nil), ct...)
		flipped[i/8] ^= 1 << (i % 8)
		if got, err := ring.Open(flipped, aad); !errors.Is(err, ErrDecrypt) || got != nil {
			t.Fatalf("bit %d (byte %d) flipped: Open = %q, %v; want ErrDecrypt", i, i/8, got, err)
		}
		// Rewrap cannot check the payload (it has no aad), but it must refuse a damaged header.
		if i/8 < headerSize {
			if _, _, err := ring.Rewrap(flipped); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("bit %d (byte %d) flipped: Rewrap: %v; want ErrDecrypt", i, i/8, err)
			}
		}
	}
	if _, err := ring.Open(ct, aad); err != nil {
		t.Fatalf("the original was modified: %v", err)
	}
}

func TestUnknownKey(t *testing.T) {
	a, b := mustRing(t, testKey(1)), mustRing(t, testKey(2))
	ct := mustSeal(t, a, []byte("secret"), nil)
	_, err := b.Open(ct, nil)
	if !errors.Is(err, ErrUnknownKey) || !errors.Is(err, ErrDecrypt) {
		t.Fatalf("Open with another ring: %v; want ErrUnknownKey (and ErrDecrypt)", err)
	}
	if !strings.Contains(err.Error(), a.CurrentID()) {
		t.Errorf("error %q does not name the missing key %s", err, a.CurrentID())
	}
	if _, _, err := b.Rewrap(ct); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Rewrap with another ring: %v; want ErrUnknownKey", err)
	}
	// A ciphertext damaged anywhere else is not reported as a missing key.
	damaged := append([]byte(nil), ct...)
	damaged[len(damaged)-1] ^= 1
	if _, err := a.Open(damaged, nil); errors.Is(err, ErrUnknownKey) {
		t.Errorf("damaged payload reported as unknown key: %v", err)
	}
}

// TestRotation is the story an operator goes through: add a key, rewrap, drop the old key.
func TestRotation(t *testing.T) {
	keyA, keyB := testKey(0xa), testKey(0xb)
	ringA := mustRing(t, keyA)
	aad := []byte("signing_keys/k1")
	ct := mustSeal(t, ringA, []byte("private key"), aad)

	ringBA := mustRing(t, keyB, keyA)
	if ringBA.CurrentID() != idOf(keyB) {
		t.Fatalf("CurrentID = %s, want B's %s", ringBA.CurrentID(), idOf(keyB))
	}
	if got, err := ringBA.Open(ct, aad); err != nil || string(got) != "private key" {
		t.Fatalf("ring {B, A} opens A's ciphertext: %q, %v", got, err)
	}

	moved, changed, err := ringBA.Rewrap(ct)
	if err != nil || !changed {
		t.Fatalf("Rewrap = changed %v, %v; want changed", changed, err)
	}
	if id, _ := KeyID(moved); id != idOf(keyB) {
		t.Errorf("KeyID after Rewrap = %s, want B's %s", id, idOf(keyB))
	}
	if !bytes.Equal(moved[headerSize:], ct[headerSize:]) {
		t.Error("Rewrap changed the payload")
	}
	again, changed, err := ringBA.Rewrap(moved)
	if err != nil || changed || !bytes.Equal(again, moved) {
		t.Errorf("second Rewrap = changed %v, %v (same bytes %v); want unchanged", changed, err, bytes.Equal(again, moved))
	}

	if got, err := mustRing(t, keyB).Open(moved, aad); err != nil || string(got) != "private key" {
		t.Errorf("ring {B} opens the rewrapped ciphertext: %q, %v", got, err)
	}
	if _, err := ringA.Open(moved, aad); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("ring {A} opens the rewrapped ciphertext: %v; want ErrUnknownKey", err)
	}
	if _, err := mustRing(t, keyB).Open(moved, []byte("signing_keys/k2")); !errors.Is(err, ErrDecrypt) {
		t.Errorf("rewrapped ciphertext opens with other aad: %v", err)
	}
}

func TestNewKeyring(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys [][]byte
		want string // in the error; "" = valid
	}{
		{"one key", [][]byte{testKey(1)}, ""},
		{"three keys", [][]byte{testKey(1), testKey(2), testKey(3)}, ""},
		{"none", nil, "at least one"},
		{"16 bytes", [][]byte{testKey(1), make([]byte, 16)}, "master key 2 of 2 is 16 bytes"},
		{"33 bytes", [][]byte{make([]byte, 33)}, "is 33 bytes"},
		{"empty key", [][]byte{{}}, "is 0 bytes"},
		{"duplicate", [][]byte{testKey(1), testKey(2), testKey(1)}, "master key 3 of 3 repeats key 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ring, err := NewKeyring(tc.keys...)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if ring.CurrentID() != idOf(tc.keys[0]) {
					t.Errorf("CurrentID = %s, want %s", ring.CurrentID(), idOf(tc.keys[0]))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewKeyring: %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestKeyringKeepsNoReferenceToKeys(t *testing.T) {
	key := testKey(1)
	ring := mustRing(t, key)
	ct := mustSeal(t, ring, []byte("secret"), nil)
	clear(key)
	if _, err := ring.Open(ct, nil); err != nil {
		t.Fatalf("the ring depends on the caller's slice: %v", err)
	}
}

func TestKeyringStringShowsNoKey(t *testing.T) {
	key := testKey(0x5c)
	s := mustRing(t, key, testKey(2)).String()
	if !strings.Contains(s, idOf(key)) || strings.Contains(s, EncodeKey(key)) || strings.Contains(s, hex.EncodeToString(key)) {
		t.Errorf("String() = %q", s)
	}
}

func TestKeyID(t *testing.T) {
	key := testKey(1)
	ct := mustSeal(t, mustRing(t, key), []byte("x"), nil)
	if id, err := KeyID(ct); err != nil || id != idOf(key) || len(id) != 16 {
		t.Errorf("KeyID = %q, %v; want %q", id, err, idOf(key))
	}
	for _, bad := range [][]byte{nil, ct[:10], append([]byte{0}, ct[1:]...)} {
		if _, err := KeyID(bad); !errors.Is(err, ErrDecrypt) {
			t.Errorf("KeyID(%x...): %v; want ErrDecrypt", bad[:min(len(bad), 4)], err)
		}
	}
}

func TestGenerateKey(t *testing.T) {
	key, err := GenerateKey(bytes.NewReader(testKey(7)))
	if err != nil || !bytes.Equal(key, testKey(7)) {
		t.Fatalf("GenerateKey from a fixed reader = %x, %v", key, err)
	}
	if _, err := GenerateKey(bytes.NewReader(make([]byte, KeySize-1))); err == nil {
		t.Error("GenerateKey accepted a short read")
	}
	a, errA := GenerateKey(nil)
	b, errB := GenerateKey(rand.Reader)
	if errA != nil || errB != nil || len(a) != KeySize || bytes.Equal(a, b) {
		t.Errorf("GenerateKey = %d bytes, %v, %v (equal %v)", len(a), errA, errB, bytes.Equal(a, b))
	}
	parsed, err := ParseKeys(EncodeKey(a))
	if err != nil || len(parsed) != 1 || !bytes.Equal(parsed[0], a) {
		t.Errorf("ParseKeys(EncodeKey(k)) = %x, %v", parsed, err)
	}
}

// FuzzOpen checks that no input makes Open, Rewrap or KeyID panic, and that anything Open
// accepts is what was sealed. Plain `go test` runs the seeds.
func FuzzOpen(f *testing.F) {
	ring := mustRing(f, testKey(1), testKey(2))
	old := mustRing(f, testKey(2))
	ct := mustSeal(f, ring, []byte("fuzz"), []byte("aad"))
	f.Add(ct, []byte("aad"))
	f.Add(mustSeal(f, old, []byte("fuzz"), []byte("aad")), []byte("aad"))
	f.Add(mustSeal(f, ring, nil, nil), []byte(nil))
	f.Add(ct[:minSize], []byte("aad"))
	f.Add(ct[:headerSize], []byte("aad"))
	f.Add([]byte{}, []byte{})
	f.Add([]byte{1}, []byte("aad"))
	f.Add(append([]byte{2}, ct[1:]...), []byte("aad"))
	f.Add(make([]byte, minSize), []byte{})
	f.Fuzz(func(t *testing.T, ciphertext, aad []byte) {
		plaintext, err := ring.Open(ciphertext, aad)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("Open error is not ErrDecrypt: %v", err)
			}
		} else if string(plaintext) != "fuzz" && len(plaintext) != 0 {
			t.Fatalf("Open accepted a forgery: %q", plaintext)
		}
		if _, _, err := ring.Rewrap(ciphertext); err != nil && !errors.Is(err, ErrDecrypt) {
			t.Fatalf("Rewrap error is not ErrDecrypt: %v", err)
		}
		if _, err := KeyID(ciphertext); err != nil && !errors.Is(err, ErrDecrypt) {
			t.Fatalf("KeyID error is not ErrDecrypt: %v", err)
		}
	})
}

func BenchmarkSeal(b *testing.B) {
	ring := mustRing(b, testKey(1))
	secret, aad := bytes.Repeat([]byte{0x42}, 256), []byte("signing_keys/key_123")
	b.SetBytes(int64(len(secret)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ring.Seal(secret, aad); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	ring := mustRing(b, testKey(1))
	secret, aad := bytes.Repeat([]byte{0x42}, 256), []byte("signing_keys/key_123")
	ct := mustSeal(b, ring, secret, aad)
	b.SetBytes(int64(len(secret)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ring.Open(ct, aad); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRewrap(b *testing.B) {
	ct := mustSeal(b, mustRing(b, testKey(1)), bytes.Repeat([]byte{0x42}, 256), nil)
	ring := mustRing(b, testKey(2), testKey(1))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ring.Rewrap(ct); err != nil {
			b.Fatal(err)
		}
	}
}

func TestDeriveKey(t *testing.T) {
	a, b := bytes.Repeat([]byte{1}, KeySize), bytes.Repeat([]byte{2}, KeySize)
	ring1, err := NewKeyring(a, b)
	if err != nil {
		t.Fatal(err)
	}
	ring2, err := NewKeyring(a)
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := NewKeyring(b, a)
	if err != nil {
		t.Fatal(err)
	}
	k1, _ := ring1.DeriveKey("x")
	k2, _ := ring2.DeriveKey("x")
	other, _ := ring1.DeriveKey("y")
	after, _ := rotated.DeriveKey("x")
	if len(k1) != KeySize || !bytes.Equal(k1, k2) {
		t.Errorf("two rings with the same current key derive different keys")
	}
	if bytes.Equal(k1, other) || bytes.Equal(k1, after) {
		t.Errorf("keys for another purpose or another current key are the same")
	}
	if bytes.Equal(k1, a) {
		t.Errorf("derived key is the master key")
	}
}
