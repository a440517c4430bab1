package token_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/latchkey-dev/latchkey/internal/token"
)

var allAlgorithms = []token.Algorithm{token.RS256, token.ES256, token.EdDSA}

// keyCache keeps generated keys per (alg, id) across tests: RSA generation is the slowest
// step of this package's tests.
var keyCache sync.Map

func testKey(t testing.TB, alg token.Algorithm, id string) token.SigningKey {
	t.Helper()
	if k, ok := keyCache.Load(string(alg) + "/" + id); ok {
		return k.(token.SigningKey)
	}
	k, err := token.GenerateKey(alg, id)
	if err != nil {
		t.Fatalf("GenerateKey(%s): %v", alg, err)
	}
	keyCache.Store(string(alg)+"/"+id, k)
	return k
}

func TestParseAlgorithm(t *testing.T) {
	for _, s := range []string{"RS256", "ES256", "EdDSA"} {
		if a, err := token.ParseAlgorithm(s); err != nil || string(a) != s {
			t.Errorf("ParseAlgorithm(%q) = %q, %v", s, a, err)
		}
	}
	for _, s := range []string{"", "none", "None", "HS256", "HS512", "rs256", "RS384", "PS256", "ES384", "ES256K", "Ed25519", "eddsa", " RS256"} {
		if a, err := token.ParseAlgorithm(s); err == nil {
			t.Errorf("ParseAlgorithm(%q) = %q, want an error", s, a)
		}
	}
}

func TestGenerateKey(t *testing.T) {
	for _, alg := range allAlgorithms {
		t.Run(string(alg), func(t *testing.T) {
			k := testKey(t, alg, "gen-"+string(alg))
			if k.ID != "gen-"+string(alg) || k.Algorithm != alg {
				t.Fatalf("key = %q %q", k.ID, k.Algorithm)
			}
			switch priv := k.Private.(type) {
			case *rsa.PrivateKey:
				if alg != token.RS256 || priv.N.BitLen() != 2048 {
					t.Errorf("%s: RSA key of %d bits", alg, priv.N.BitLen())
				}
			case *ecdsa.PrivateKey:
				if alg != token.ES256 || priv.Curve != elliptic.P256() {
					t.Errorf("%s: ECDSA key on %s", alg, priv.Curve.Params().Name)
				}
			case ed25519.PrivateKey:
				if alg != token.EdDSA {
					t.Errorf("%s: Ed25519 key", alg)
				}
			default:
				t.Errorf("%s: key of type %T", alg, priv)
			}
		})
	}
	if _, err := token.GenerateKey(token.ES256, ""); err == nil {
		t.Error("GenerateKey without an id succeeded")
	}
	for _, alg := range []token.Algorithm{"", "none", "HS256", "PS256"} {
		if _, err := token.GenerateKey(alg, "k"); err == nil {
			t.Errorf("GenerateKey(%q) succeeded", alg)
		}
	}
}

func TestPrivateKeyRoundTrip(t *testing.T) {
	for _, alg := range allAlgorithms {
		t.Run(string(alg), func(t *testing.T) {
			k := testKey(t, alg, "rt-"+string(alg))
			der, err := k.MarshalPrivate()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := x509.ParsePKCS8PrivateKey(der); err != nil {
				t.Fatalf("MarshalPrivate is not PKCS#8: %v", err)
			}
			got, err := token.ParsePrivateKey(k.ID, alg, der)
			if err != nil {
				t.Fatal(err)
			}
			type equaler interface {
				Equal(x crypto.PrivateKey) bool
			}
			if got.ID != k.ID || got.Algorithm != alg || !got.Private.(equaler).Equal(k.Private) {
				t.Fatalf("round trip changed the key")
			}
			// The parsed key signs tokens that the original's public half verifies.
			raw, err := token.Mint(got, fullClaims(testNow))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := verifierFor(k.Public()).Verify(t.Context(), raw); err != nil {
				t.Fatalf("token of the parsed key: %v", err)
			}
		})
	}
}

func TestParsePrivateKeyRefuses(t *testing.T) {
	der := func(t *testing.T, key any) []byte {
		t.Helper()
		b, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	rsaDER, _ := testKey(t, token.RS256, "r").MarshalPrivate()
	ecDER, _ := testKey(t, token.ES256, "e").MarshalPrivate()
	edDER, _ := testKey(t, token.EdDSA, "d").MarshalPrivate()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		id   string
		alg  token.Algorithm
		der  []byte
	}{
		{"RSA key as ES256", "k", token.ES256, rsaDER},
		{"RSA key as EdDSA", "k", token.EdDSA, rsaDER},
		{"EC key as RS256", "k", token.RS256, ecDER},
		{"EC key as EdDSA", "k", token.EdDSA, ecDER},
		{"Ed25519 key as RS256", "k", token.RS256, edDER},
		{"Ed25519 key as ES256", "k", token.ES256, edDER},
		{"RSA 1024", "k", token.RS256, der(t, small)},
		{"P-384 as ES256", "k", token.ES256, der(t, p384)},
		{"HS256", "k", "HS256", rsaDER},
		{"none", "k", "none", edDER},
		{"no id", "", token.RS256, rsaDER},
		{"not DER", "k", token.RS256, []byte("-----BEGIN PRIVATE KEY-----")},
		{"truncated", "k", token.ES256, ecDER[:len(ecDER)/2]},
		{"empty", "k", token.EdDSA, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := token.ParsePrivateKey(tc.id, tc.alg, tc.der); err == nil {
				t.Fatal("ParsePrivateKey succeeded")
			}
		})
	}
}

func TestMarshalPrivateRefusesMismatch(t *testing.T) {
	k := testKey(t, token.ES256, "e")
	k.Algorithm = token.RS256
	if _, err := k.MarshalPrivate(); err == nil {
		t.Error("MarshalPrivate of an ECDSA key labelled RS256 succeeded")
	}
	if _, err := (token.SigningKey{ID: "x", Algorithm: token.ES256}).MarshalPrivate(); err == nil {
		t.Error("MarshalPrivate of no key succeeded")
	}
}

// privateJWKMembers are the JWK members that carry private key material (RFC 7518 §6).
var privateJWKMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"}

func TestPublicJWK(t *testing.T) {
	want := map[token.Algorithm]map[string]string{
		token.RS256: {"kty": "RSA", "e": "AQAB"},
		token.ES256: {"kty": "EC", "crv": "P-256"},
		token.EdDSA: {"kty": "OKP", "crv": "Ed25519"},
	}
	for _, alg := range allAlgorithms {
		t.Run(string(alg), func(t *testing.T) {
			pub := testKey(t, alg, "jwk-"+string(alg)).Public()
			b, err := pub.JWK()
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			fields := map[string]string{"kid": pub.ID, "alg": string(alg), "use": "sig"}
			for name, v := range want[alg] {
				fields[name] = v
			}
			for name, v := range fields {
				if m[name] != v {
					t.Errorf("%s = %v, want %q", name, m[name], v)
				}
			}
			for _, name := range privateJWKMembers {
				if _, ok := m[name]; ok {
					t.Errorf("JWK has private member %q", name)
				}
			}
			got, err := token.ParsePublicJWK(b)
			if err != nil {
				t.Fatal(err)
			}
			type equaler interface{ Equal(x crypto.PublicKey) bool }
			if got.ID != pub.ID || got.Algorithm != alg || !pub.Key.(equaler).Equal(got.Key) {
				t.Fatalf("ParsePublicJWK(JWK()) = %+v, want %+v", got, pub)
			}
			// The independent library reads it as the same key.
			k, err := jwk.ParseKey(b)
			if err != nil {
				t.Fatalf("jwx: %v", err)
			}
			if kid, _ := k.KeyID(); kid != pub.ID {
				t.Errorf("jwx kid = %q", kid)
			}
		})
	}
}

func TestJWKRefusesPrivateOrMismatchedKeys(t *testing.T) {
	ec := testKey(t, token.ES256, "e")
	for _, tc := range []struct {
		name string
		pub  token.PublicKey
	}{
		{"private key in Key", token.PublicKey{ID: "e", Algorithm: token.ES256, Key: ec.Private}},
		{"private Ed25519 key in Key", token.PublicKey{ID: "d", Algorithm: token.EdDSA, Key: testKey(t, token.EdDSA, "d").Private}},
		{"alg of another key type", token.PublicKey{ID: "e", Algorithm: token.RS256, Key: ec.Public().Key}},
		{"alg none", token.PublicKey{ID: "e", Algorithm: "none", Key: ec.Public().Key}},
		{"no id", token.PublicKey{Algorithm: token.ES256, Key: ec.Public().Key}},
		{"no key", token.PublicKey{ID: "e", Algorithm: token.ES256}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if b, err := tc.pub.JWK(); err == nil {
				t.Fatalf("JWK() = %s", b)
			}
		})
	}
}

func TestParsePublicJWKRefuses(t *testing.T) {
	rsaKey := testKey(t, token.RS256, "r")
	ecKey := testKey(t, token.ES256, "e")
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	jwkOf := func(key any, kid, alg, use string) string {
		b, err := jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: alg, Use: use}.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, tc := range []struct{ name, jwk string }{
		{"private RSA JWK", jwkOf(rsaKey.Private, "r", "RS256", "sig")},
		{"private EC JWK", jwkOf(ecKey.Private, "e", "ES256", "sig")},
		{"private Ed25519 JWK", jwkOf(testKey(t, token.EdDSA, "d").Private, "d", "EdDSA", "sig")},
		{"symmetric key", jwkOf([]byte("0123456789abcdef0123456789abcdef"), "h", "HS256", "sig")},
		{"no alg", jwkOf(ecKey.Public().Key, "e", "", "sig")},
		{"alg none", jwkOf(ecKey.Public().Key, "e", "none", "sig")},
		{"alg of another key type", jwkOf(ecKey.Public().Key, "e", "RS256", "sig")},
		{"RSA key with PS256", jwkOf(rsaKey.Public().Key, "r", "PS256", "sig")},
		{"encryption key", jwkOf(rsaKey.Public().Key, "r", "RS256", "enc")},
		{"RSA 1024", jwkOf(&small.PublicKey, "s", "RS256", "sig")},
		{"no kid", jwkOf(ecKey.Public().Key, "", "ES256", "sig")},
		{"not JSON", `{"kty":`},
		{"unknown kty", `{"kty":"XYZ","kid":"x","alg":"ES256"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if p, err := token.ParsePublicJWK([]byte(tc.jwk)); err == nil {
				t.Fatalf("ParsePublicJWK(%s) = %+v", tc.jwk, p)
			}
		})
	}
}

func TestJWKS(t *testing.T) {
	keys := []token.PublicKey{
		testKey(t, token.ES256, "new").Public(),
		testKey(t, token.RS256, "old").Public(),
		testKey(t, token.EdDSA, "other").Public(),
	}
	b, err := token.JWKS(keys)
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != len(keys) {
		t.Fatalf("JWKS has %d keys, want %d", len(set.Keys), len(keys))
	}
	for i, raw := range set.Keys {
		got, err := token.ParsePublicJWK(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != keys[i].ID {
			t.Errorf("key %d is %q, want %q: the order must be kept", i, got.ID, keys[i].ID)
		}
		for _, name := range privateJWKMembers {
			if strings.Contains(string(raw), `"`+name+`":`) {
				t.Errorf("key %q has private member %q", got.ID, name)
			}
		}
	}
	jset, err := jwk.Parse(b)
	if err != nil {
		t.Fatalf("jwx: %v", err)
	}
	if jset.Len() != len(keys) {
		t.Errorf("jwx reads %d keys", jset.Len())
	}

	empty, err := token.JWKS(nil)
	if err != nil || string(empty) != `{"keys":[]}` {
		t.Errorf("JWKS(nil) = %s, %v", empty, err)
	}
	if _, err := token.JWKS([]token.PublicKey{keys[0], keys[0]}); err == nil {
		t.Error("JWKS with a kid twice succeeded")
	}
	bad := keys[1]
	bad.Algorithm = token.ES256
	if _, err := token.JWKS([]token.PublicKey{keys[0], bad}); err == nil {
		t.Error("JWKS with a mislabelled key succeeded")
	}
}
