package token_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/token"
)

const (
	testIssuer   = "https://auth.example.com"
	testClientID = "cli_0123456789abcdef01234567"
)

// testNow is the verifiers' clock unless a test moves it.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// keyMap is a KeySet over a fixed set of keys: one project's published keys.
type keyMap map[string]token.PublicKey

func (m keyMap) PublicKey(_ context.Context, kid string) (token.PublicKey, error) {
	if k, ok := m[kid]; ok {
		return k, nil
	}
	return token.PublicKey{}, fmt.Errorf("kid %q: %w", kid, token.ErrUnknownKey)
}

func keysOf(pubs ...token.PublicKey) keyMap {
	m := keyMap{}
	for _, p := range pubs {
		m[p.ID] = p
	}
	return m
}

// keySetFromJWKS reads a KeySet back from published JWKS bytes, as another instance would.
func keySetFromJWKS(t testing.TB, b []byte) keyMap {
	t.Helper()
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	m := keyMap{}
	for _, raw := range set.Keys {
		p, err := token.ParsePublicJWK(raw)
		if err != nil {
			t.Fatal(err)
		}
		m[p.ID] = p
	}
	return m
}

func verifierFor(pubs ...token.PublicKey) token.Verifier {
	return token.Verifier{Keys: keysOf(pubs...), Issuer: testIssuer, Audience: testClientID,
		Now: func() time.Time { return testNow }}
}

// fullClaims sets every claim, with sub-second times that Mint must drop.
func fullClaims(now time.Time) token.AccessClaims {
	return token.AccessClaims{
		Issuer: testIssuer, Subject: "0123456789abcdef01234567", Audience: []string{testClientID},
		IssuedAt: now.Add(-time.Second + 250*time.Millisecond), NotBefore: now.Add(-time.Second + 250*time.Millisecond),
		ExpiresAt: now.Add(15*time.Minute + 999*time.Millisecond),
		ID:        "89abcdef0123456789abcdef", ClientID: testClientID, AuthorizedParty: testClientID,
		SessionID: "fedcba9876543210fedcba98", AMR: []string{"otp", "mfa"},
		OrgID: "00112233445566778899aabb", Roles: []string{"admin", "billing"}, Permissions: []string{"users:read", "users:write"},
		Scope: "openid profile",
	}
}

// machineClaims are those of a client_credentials token: no user, session or organization.
func machineClaims(now time.Time) token.AccessClaims {
	return token.AccessClaims{
		Issuer: testIssuer, Subject: testClientID, Audience: []string{testClientID},
		IssuedAt: now, NotBefore: now, ExpiresAt: now.Add(time.Hour), ID: "0a0b0c0d0e0f101112131415",
		ClientID: testClientID, AuthorizedParty: testClientID, Scope: "users:read", GrantType: "client_credentials",
	}
}

// onWire is what the claims are expected to look like after a round trip: whole seconds,
// UTC, and always-present arrays.
func onWire(c token.AccessClaims) token.AccessClaims {
	sec := func(t time.Time) time.Time {
		if t.IsZero() {
			return t
		}
		return time.Unix(t.Unix(), 0).UTC()
	}
	c.ExpiresAt, c.NotBefore, c.IssuedAt = sec(c.ExpiresAt), sec(c.NotBefore), sec(c.IssuedAt)
	for _, s := range []*[]string{&c.AMR, &c.Roles, &c.Permissions} {
		if *s == nil {
			*s = []string{}
		}
	}
	return c
}

func mustMint(t testing.TB, k token.SigningKey, c token.AccessClaims) string {
	t.Helper()
	raw, err := token.Mint(k, c)
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	return raw
}

// wantInvalidToken checks that err is the documented invalid_token failure, for the reason
// named by why (a substring of the description), so that each refusal is shown to come from
// the check it is meant to exercise.
func wantInvalidToken(t testing.TB, err error, why string) {
	t.Helper()
	fe, ok := failure.As(err)
	if !ok {
		t.Fatalf("error %v is not a failure.Error", err)
	}
	if fe.Kind != failure.Unauthenticated || fe.Code != "invalid_token" {
		t.Fatalf("failure = kind %d code %q, want Unauthenticated invalid_token", fe.Kind, fe.Code)
	}
	if !strings.Contains(fe.Description, why) {
		t.Fatalf("description %q, want it to say %q", fe.Description, why)
	}
}

// jwxVerify verifies raw with lestrrat-go/jwx alone, given only the published JWKS bytes.
func jwxVerify(jwks []byte, raw string, now time.Time) (jwt.Token, error) {
	set, err := jwk.Parse(jwks)
	if err != nil {
		return nil, fmt.Errorf("jwx: parse JWKS: %w", err)
	}
	return jwt.Parse([]byte(raw), jwt.WithKeySet(set),
		jwt.WithIssuer(testIssuer), jwt.WithAudience(testClientID), jwt.WithRequiredClaim(jwt.ExpirationKey),
		jwt.WithClock(jwt.ClockFunc(func() time.Time { return now })), jwt.WithAcceptableSkew(30*time.Second))
}

// claimsFromJWX reads every Latchkey claim out of a jwx token.
func claimsFromJWX(t testing.TB, tok jwt.Token) token.AccessClaims {
	t.Helper()
	var c token.AccessClaims
	c.Issuer, _ = tok.Issuer()
	c.Subject, _ = tok.Subject()
	c.Audience, _ = tok.Audience()
	c.ExpiresAt, _ = tok.Expiration()
	c.NotBefore, _ = tok.NotBefore()
	c.IssuedAt, _ = tok.IssuedAt()
	c.ExpiresAt, c.NotBefore, c.IssuedAt = utcOrZero(c.ExpiresAt), utcOrZero(c.NotBefore), utcOrZero(c.IssuedAt)
	c.ID, _ = tok.JwtID()
	str := func(name string) string {
		var s string
		if tok.Has(name) {
			if err := tok.Get(name, &s); err != nil {
				t.Fatalf("jwx claim %s: %v", name, err)
			}
		}
		return s
	}
	strs := func(name string) []string {
		if !tok.Has(name) {
			return nil
		}
		var v []any
		if err := tok.Get(name, &v); err != nil {
			t.Fatalf("jwx claim %s: %v", name, err)
		}
		out := []string{}
		for _, e := range v {
			out = append(out, e.(string))
		}
		return out
	}
	c.ClientID, c.AuthorizedParty, c.SessionID = str("client_id"), str("azp"), str("sid")
	c.OrgID, c.Scope, c.GrantType = str("org_id"), str("scope"), str("gty")
	c.AMR, c.Roles, c.Permissions = strs("amr"), strs("roles"), strs("permissions")
	return c
}

func utcOrZero(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

// segments splits a compact JWS and decodes its header and payload.
func segments(t testing.TB, raw string) (header, payload map[string]any, parts []string) {
	t.Helper()
	parts = strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	for i, dst := range []*map[string]any{&header, &payload} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	return header, payload, parts
}

func TestMintVerifyRoundTrip(t *testing.T) {
	for _, alg := range allAlgorithms {
		for _, kind := range []struct {
			name   string
			claims token.AccessClaims
			absent []string // claims that must not be on the wire
		}{
			{"user", fullClaims(testNow), []string{"gty"}},
			{"machine", machineClaims(testNow), []string{"sid", "org_id"}},
		} {
			t.Run(string(alg)+"/"+kind.name, func(t *testing.T) {
				k := testKey(t, alg, "rt-"+string(alg))
				jwks, err := token.JWKS([]token.PublicKey{k.Public()})
				if err != nil {
					t.Fatal(err)
				}
				raw := mustMint(t, k, kind.claims)
				want := onWire(kind.claims)

				// The header is exactly what RFC 9068 asks for.
				header, payload, _ := segments(t, raw)
				wantHeader := map[string]any{"alg": string(alg), "kid": k.ID, "typ": "at+jwt"}
				if !reflect.DeepEqual(header, wantHeader) {
					t.Errorf("header = %v, want %v", header, wantHeader)
				}
				for _, name := range []string{"roles", "permissions", "amr"} {
					if _, ok := payload[name].([]any); !ok {
						t.Errorf("%s = %#v, want an array", name, payload[name])
					}
				}
				for _, name := range kind.absent {
					if _, ok := payload[name]; ok {
						t.Errorf("empty claim %s is on the wire", name)
					}
				}
				if exp, ok := payload["exp"].(float64); !ok || exp != float64(want.ExpiresAt.Unix()) {
					t.Errorf("exp = %#v, want NumericDate %d", payload["exp"], want.ExpiresAt.Unix())
				}

				// Our verifier, from the JWKS bytes as published.
				v := token.Verifier{Keys: keySetFromJWKS(t, jwks), Issuer: testIssuer, Audience: testClientID,
					Now: func() time.Time { return testNow }}
				got, err := v.Verify(t.Context(), raw)
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("Verify claims:\n got %+v\nwant %+v", got, want)
				}

				// An independent library, from the same bytes.
				tok, err := jwxVerify(jwks, raw, testNow)
				if err != nil {
					t.Fatalf("jwx: %v", err)
				}
				if jc := claimsFromJWX(t, tok); !reflect.DeepEqual(jc, want) {
					t.Errorf("jwx claims:\n got %+v\nwant %+v", jc, want)
				}
				msg, err := jws.Parse([]byte(raw))
				if err != nil {
					t.Fatal(err)
				}
				if n := len(msg.Signatures()); n != 1 {
					t.Fatalf("jwx sees %d signatures", n)
				}
				h := msg.Signatures()[0].ProtectedHeaders()
				typ, _ := h.Type()
				kid, _ := h.KeyID()
				jalg, _ := h.Algorithm()
				if typ != "at+jwt" || kid != k.ID || jalg.String() != string(alg) {
					t.Errorf("jwx header typ %q kid %q alg %q", typ, kid, jalg)
				}
			})
		}
	}
}

// TestRotation is the rotation story at this level: while the JWKS lists the old and the new
// key, tokens of both verify, and the old key's tokens stop only when they expire.
func TestRotation(t *testing.T) {
	old := testKey(t, token.RS256, "rot-old")
	next := testKey(t, token.ES256, "rot-new")
	jwks, err := token.JWKS([]token.PublicKey{old.Public(), next.Public()})
	if err != nil {
		t.Fatal(err)
	}
	issued := testNow
	oldToken := mustMint(t, old, fullClaims(issued))
	exp := onWire(fullClaims(issued)).ExpiresAt
	now := issued.Add(5 * time.Minute) // the new key has started signing
	newToken := mustMint(t, next, fullClaims(now))

	v := token.Verifier{Keys: keySetFromJWKS(t, jwks), Issuer: testIssuer, Audience: testClientID,
		Now: func() time.Time { return now }}
	check := func(name, raw string, wantOK bool) {
		t.Helper()
		_, err := v.Verify(t.Context(), raw)
		_, jerr := jwxVerify(jwks, raw, now)
		if wantOK && (err != nil || jerr != nil) {
			t.Errorf("%s at %v: ours %v, jwx %v", name, now, err, jerr)
		}
		if !wantOK {
			wantInvalidToken(t, err, "has expired")
			if jerr == nil {
				t.Errorf("%s at %v: jwx accepted it", name, now)
			}
		}
	}
	check("old key's token", oldToken, true)
	check("new key's token", newToken, true)

	now = exp.Add(29 * time.Second) // within the default 30s leeway
	check("old key's token just after exp", oldToken, true)

	now = exp.Add(31 * time.Second)
	check("old key's token past exp and leeway", oldToken, false)
	check("new key's token", newToken, true)
}

// forge assembles a compact JWS by hand, so that a test controls every byte of the header.
func forge(header string, payload []byte, sign func(signingInput []byte) []byte) string {
	in := b64(header) + "." + b64(payload)
	return in + "." + base64.RawURLEncoding.EncodeToString(sign([]byte(in)))
}

func b64[T string | []byte](b T) string { return base64.RawURLEncoding.EncodeToString([]byte(b)) }

func header(alg, kid string) string {
	return fmt.Sprintf(`{"alg":%q,"kid":%q,"typ":"at+jwt"}`, alg, kid)
}

func sha256Of(in []byte) []byte { h := sha256.Sum256(in); return h[:] }

func signRS256(k crypto.Signer) func([]byte) []byte {
	return func(in []byte) []byte {
		sig, err := rsa.SignPKCS1v15(rand.Reader, k.(*rsa.PrivateKey), crypto.SHA256, sha256Of(in))
		if err != nil {
			panic(err)
		}
		return sig
	}
}

func signPS256(k crypto.Signer) func([]byte) []byte {
	return func(in []byte) []byte {
		sig, err := rsa.SignPSS(rand.Reader, k.(*rsa.PrivateKey), crypto.SHA256, sha256Of(in), nil)
		if err != nil {
			panic(err)
		}
		return sig
	}
}

func signES256(k crypto.Signer) func([]byte) []byte {
	return func(in []byte) []byte {
		r, s, err := ecdsa.Sign(rand.Reader, k.(*ecdsa.PrivateKey), sha256Of(in))
		if err != nil {
			panic(err)
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return sig
	}
}

func signEdDSA(k crypto.Signer) func([]byte) []byte {
	return func(in []byte) []byte { return ed25519.Sign(k.(ed25519.PrivateKey), in) }
}

func signHS256(key []byte) func([]byte) []byte {
	return func(in []byte) []byte {
		m := hmac.New(sha256.New, key)
		m.Write(in)
		return m.Sum(nil)
	}
}

func unsigned([]byte) []byte { return nil }

// joseSign signs payload with go-jose, with the given options, in compact form.
func joseSign(t testing.TB, alg jose.SignatureAlgorithm, key any, opts *jose.SignerOptions, payload []byte) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func atJWT() *jose.SignerOptions { return (&jose.SignerOptions{}).WithType("at+jwt") }

// claimsJSON is the payload of a token minted with c, as a map a test can change.
func claimsJSON(t testing.TB, c token.AccessClaims) map[string]any {
	t.Helper()
	_, payload, _ := segments(t, mustMint(t, testKey(t, token.EdDSA, "payload"), c))
	return payload
}

func marshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifyRefuses(t *testing.T) {
	rsaKey := testKey(t, token.RS256, "rsa-1")
	ecKey := testKey(t, token.ES256, "ec-1")
	edKey := testKey(t, token.EdDSA, "ed-1")
	otherProject := testKey(t, token.ES256, "other-project-1")
	// An attacker's key that reuses one of our kids.
	impostor := token.SigningKey{ID: "ec-1", Algorithm: token.ES256, Private: otherProject.Private}
	v := verifierFor(rsaKey.Public(), ecKey.Public(), edKey.Public())

	claims := fullClaims(testNow)
	payload := marshal(t, claimsJSON(t, claims))
	valid := mustMint(t, rsaKey, claims)
	_, _, parts := segments(t, valid)

	with := func(mod func(c *token.AccessClaims)) token.AccessClaims {
		c := fullClaims(testNow)
		mod(&c)
		return c
	}
	withJSON := func(mod func(m map[string]any)) []byte {
		m := claimsJSON(t, claims)
		mod(m)
		return marshal(t, m)
	}

	rsaPub := rsaKey.Public().Key.(*rsa.PublicKey)
	pkix, err := x509.MarshalPKIXPublicKey(rsaPub)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := x509.MarshalPKCS1PublicKey(rsaPub)
	rsaJWK, err := rsaKey.Public().JWK()
	if err != nil {
		t.Fatal(err)
	}
	otherJWK, err := otherProject.Public().JWK()
	if err != nil {
		t.Fatal(err)
	}

	tamperedSig := func() string {
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil {
			t.Fatal(err)
		}
		sig[len(sig)/2] ^= 0x01
		return parts[0] + "." + parts[1] + "." + b64(sig)
	}()
	jwe := func() string {
		enc, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.RSA_OAEP_256, Key: rsaPub, KeyID: "rsa-1"},
			(&jose.EncrypterOptions{}).WithType("at+jwt"))
		if err != nil {
			t.Fatal(err)
		}
		obj, err := enc.Encrypt([]byte(valid))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := obj.CompactSerialize()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}()
	jsonSerialization := func() string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: rsaKey.Private, KeyID: "rsa-1"}}, atJWT())
		if err != nil {
			t.Fatal(err)
		}
		obj, err := s.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		return obj.FullSerialize()
	}()
	legitJWK := func(k token.SigningKey) jose.JSONWebKey { return jose.JSONWebKey{Key: k.Private, KeyID: k.ID} }

	for _, tc := range []struct {
		name string
		raw  string
		why  string // "" = must be accepted: the controls that show forging works
	}{
		// Controls: hand-forged and go-jose-signed tokens with nothing wrong verify, so each
		// refusal below is down to the one thing changed.
		{"control: minted", valid, ""},
		{"control: forged RS256", forge(header("RS256", "rsa-1"), payload, signRS256(rsaKey.Private)), ""},
		{"control: forged ES256", forge(header("ES256", "ec-1"), payload, signES256(ecKey.Private)), ""},
		{"control: forged EdDSA", forge(header("EdDSA", "ed-1"), payload, signEdDSA(edKey.Private)), ""},
		{"control: go-jose", joseSign(t, jose.ES256, legitJWK(ecKey), atJWT(), payload), ""},

		// Algorithm confusion (RFC 8725 §3.1, §3.2).
		{"alg none", forge(header("none", "rsa-1"), payload, unsigned), "algorithm is not accepted"},
		{"alg None", forge(header("None", "rsa-1"), payload, unsigned), "algorithm is not accepted"},
		{"alg none, no kid", forge(`{"alg":"none","typ":"at+jwt"}`, payload, unsigned), "algorithm is not accepted"},
		{"no alg", forge(`{"kid":"rsa-1","typ":"at+jwt"}`, payload, signRS256(rsaKey.Private)), "algorithm is not accepted"},
		{"HS256 keyed with the RSA public key (PKIX PEM)", forge(header("HS256", "rsa-1"), payload,
			signHS256(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix}))), "algorithm is not accepted"},
		{"HS256 keyed with the RSA public key (PKCS#1 PEM)", forge(header("HS256", "rsa-1"), payload,
			signHS256(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: pkcs1}))), "algorithm is not accepted"},
		{"HS256 keyed with the RSA public key (PKIX DER)", forge(header("HS256", "rsa-1"), payload, signHS256(pkix)), "algorithm is not accepted"},
		{"HS256 keyed with the RSA public key (PKCS#1 DER)", forge(header("HS256", "rsa-1"), payload, signHS256(pkcs1)), "algorithm is not accepted"},
		{"HS256 keyed with the RSA JWK", forge(header("HS256", "rsa-1"), payload, signHS256(rsaJWK)), "algorithm is not accepted"},
		{"HS256 via go-jose", joseSign(t, jose.HS256, jose.JSONWebKey{Key: pkix, KeyID: "rsa-1"}, atJWT(), payload), "algorithm is not accepted"},
		{"PS256 header on the RS256 key", forge(header("PS256", "rsa-1"), payload, signPS256(rsaKey.Private)), "algorithm is not accepted"},
		{"lower-case alg", forge(header("rs256", "rsa-1"), payload, signRS256(rsaKey.Private)), "algorithm is not accepted"},
		{"RS256 header on the ES256 key", forge(header("RS256", "ec-1"), payload, signRS256(rsaKey.Private)), "does not match its key"},
		{"ES256 header on the EdDSA key", forge(header("ES256", "ed-1"), payload, signES256(ecKey.Private)), "does not match its key"},
		{"EdDSA header on the RS256 key", forge(header("EdDSA", "rsa-1"), payload, signEdDSA(edKey.Private)), "does not match its key"},

		// Keys come only from the KeySet (RFC 8725 §3.10).
		{"unknown kid", mustMint(t, testKey(t, token.ES256, "nope"), claims), "signing key is unknown"},
		{"missing kid", joseSign(t, jose.ES256, ecKey.Private, atJWT(), payload), "names no key"},
		{"empty kid", forge(header("ES256", ""), payload, signES256(ecKey.Private)), "names no key"},
		{"huge kid", forge(header("ES256", strings.Repeat("k", 1000)), payload, signES256(ecKey.Private)), "signing key is unknown"},
		{"kid of another project's key", mustMint(t, otherProject, claims), "signing key is unknown"},
		{"another key reusing our kid", mustMint(t, impostor, claims), "signature is invalid"},
		{"embedded jwk", joseSign(t, jose.ES256, otherProject.Private, &jose.SignerOptions{EmbedJWK: true, ExtraHeaders: map[jose.HeaderKey]any{"typ": "at+jwt"}}, payload),
			"carry or point to its own key"},
		{"embedded jwk beside our kid", forge(`{"alg":"ES256","kid":"ec-1","typ":"at+jwt","jwk":`+string(otherJWK)+`}`, payload, signES256(otherProject.Private)),
			"carry or point to its own key"},
		{"jku", joseSign(t, jose.RS256, legitJWK(rsaKey), atJWT().WithHeader("jku", "https://attacker.example/jwks.json"), payload), "carry or point to its own key"},
		{"x5u", joseSign(t, jose.RS256, legitJWK(rsaKey), atJWT().WithHeader("x5u", "https://attacker.example/cert.pem"), payload), "carry or point to its own key"},
		{"x5c", forge(`{"alg":"RS256","kid":"rsa-1","typ":"at+jwt","x5c":["MIIB"]}`, payload, signRS256(rsaKey.Private)), "carry or point to its own key"},
		{"crit", joseSign(t, jose.RS256, legitJWK(rsaKey), atJWT().WithHeader("crit", []string{"exp"}).WithHeader("exp", 1), payload), "critical header"},
		{"b64", forge(`{"alg":"RS256","b64":false,"kid":"rsa-1","typ":"at+jwt"}`, payload, signRS256(rsaKey.Private)), "critical header"},
		{"unexpected header member", joseSign(t, jose.RS256, legitJWK(rsaKey), atJWT().WithContentType("JWT"), payload), "unexpected member"},

		// Explicit typing (RFC 8725 §3.11, RFC 9068 §4).
		{"typ JWT", joseSign(t, jose.RS256, legitJWK(rsaKey), (&jose.SignerOptions{}).WithType("JWT"), payload), "typ must be at+jwt"},
		{"typ missing", joseSign(t, jose.RS256, legitJWK(rsaKey), nil, payload), "typ must be at+jwt"},
		{"typ of a logout token", joseSign(t, jose.RS256, legitJWK(rsaKey), (&jose.SignerOptions{}).WithType("logout+jwt"), payload), "typ must be at+jwt"},
		{"typ not a string", forge(`{"alg":"RS256","kid":"rsa-1","typ":["at+jwt"]}`, payload, signRS256(rsaKey.Private)), "typ must be at+jwt"},

		// Claims.
		{"expired", mustMint(t, rsaKey, with(func(c *token.AccessClaims) {
			c.IssuedAt, c.NotBefore, c.ExpiresAt = testNow.Add(-time.Hour), testNow.Add(-time.Hour), testNow.Add(-31*time.Second)
		})), "has expired"},
		{"not yet valid", mustMint(t, rsaKey, with(func(c *token.AccessClaims) { c.NotBefore = testNow.Add(5 * time.Minute) })), "not valid yet"},
		{"issued far in the future", mustMint(t, rsaKey, with(func(c *token.AccessClaims) {
			c.IssuedAt, c.NotBefore, c.ExpiresAt = testNow.Add(10*time.Minute), time.Time{}, testNow.Add(25*time.Minute)
		})), "issued in the future"},
		{"wrong aud", mustMint(t, rsaKey, with(func(c *token.AccessClaims) { c.Audience = []string{"cli_another"} })), "another audience"},
		{"aud of several, none ours", mustMint(t, rsaKey, with(func(c *token.AccessClaims) { c.Audience = []string{"a", "b"} })), "another audience"},
		{"wrong iss", mustMint(t, rsaKey, with(func(c *token.AccessClaims) { c.Issuer = "https://attacker.example" })), "another issuer"},
		{"iss with a trailing slash", mustMint(t, rsaKey, with(func(c *token.AccessClaims) { c.Issuer = testIssuer + "/" })), "another issuer"},
		{"no exp", forge(header("RS256", "rsa-1"), withJSON(func(m map[string]any) { delete(m, "exp") }), signRS256(rsaKey.Private)), "no expiry"},
		{"no iat", forge(header("RS256", "rsa-1"), withJSON(func(m map[string]any) { delete(m, "iat") }), signRS256(rsaKey.Private)), "no issue time"},
		{"no sub", forge(header("RS256", "rsa-1"), withJSON(func(m map[string]any) { delete(m, "sub") }), signRS256(rsaKey.Private)), "lacks a required claim"},
		{"exp not a number", forge(header("RS256", "rsa-1"), withJSON(func(m map[string]any) { m["exp"] = "never" }), signRS256(rsaKey.Private)), "claims are malformed"},
		{"payload not JSON", forge(header("RS256", "rsa-1"), []byte("hello"), signRS256(rsaKey.Private)), "claims are malformed"},

		// Integrity.
		{"tampered payload", parts[0] + "." + b64(withJSON(func(m map[string]any) { m["sub"] = "someone-else" })) + "." + parts[2], "signature is invalid"},
		{"tampered signature", tamperedSig, "signature is invalid"},
		{"signature stripped", parts[0] + "." + parts[1] + ".", "signature is invalid"},
		{"header re-encoded", b64(`{"typ":"at+jwt","alg":"RS256","kid":"rsa-1"}`) + "." + parts[1] + "." + parts[2], "signature is invalid"},

		// Shape and size.
		{"JWE", jwe, "not a compact JWS"},
		{"JSON serialization", jsonSerialization, "not a compact JWS"},
		{"oversized", joseSign(t, jose.RS256, legitJWK(rsaKey), atJWT(),
			withJSON(func(m map[string]any) { m["scope"] = strings.Repeat("scope ", 3000) })), "too large"},
		{"empty", "", "not a compact JWS"},
		{"garbage", "not a token", "not a compact JWS"},
		{"four dots", valid + ".x", "not a compact JWS"},
		{"header not base64url", "!!!." + parts[1] + "." + parts[2], "malformed"},
		{"padded header", parts[0] + "=." + parts[1] + "." + parts[2], "malformed"},
		{"header not an object", b64(`["alg"]`) + "." + parts[1] + "." + parts[2], "malformed"},
		{"duplicate header member", forge(`{"alg":"RS256","kid":"rsa-1","typ":"JWT","typ":"at+jwt"}`, payload, signRS256(rsaKey.Private)), "malformed"},
		{"payload not base64url", parts[0] + ".***." + parts[2], "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := v.Verify(t.Context(), tc.raw)
			if tc.why == "" {
				if err != nil {
					t.Fatalf("control refused: %v", err)
				}
				if !reflect.DeepEqual(got, onWire(claims)) {
					t.Fatalf("claims = %+v", got)
				}
				return
			}
			wantInvalidToken(t, err, tc.why)
		})
	}
}

func TestVerifyAccepts(t *testing.T) {
	k := testKey(t, token.ES256, "ec-1")
	v := verifierFor(k.Public())
	payload := marshal(t, claimsJSON(t, fullClaims(testNow)))
	forgeTyp := func(typ string) string {
		return forge(fmt.Sprintf(`{"alg":"ES256","kid":"ec-1","typ":%q}`, typ), payload, signES256(k.Private))
	}
	with := func(mod func(c *token.AccessClaims)) string {
		c := fullClaims(testNow)
		mod(&c)
		return mustMint(t, k, c)
	}
	for _, tc := range []struct{ name, raw string }{
		{"typ in upper case", forgeTyp("AT+JWT")},
		{"typ as media type", forgeTyp("application/at+jwt")},
		{"typ as media type, mixed case", forgeTyp("Application/At+JWT")},
		{"aud of several", with(func(c *token.AccessClaims) { c.Audience = []string{"https://api.example.com", testClientID} })},
		{"aud as an array of one", forge(header("ES256", "ec-1"),
			[]byte(strings.Replace(string(payload), `"aud":"`+testClientID+`"`, `"aud":["`+testClientID+`"]`, 1)), signES256(k.Private))},
		{"exp within leeway", with(func(c *token.AccessClaims) {
			c.IssuedAt, c.NotBefore, c.ExpiresAt = testNow.Add(-time.Hour), time.Time{}, testNow.Add(-29*time.Second)
		})},
		{"nbf within leeway", with(func(c *token.AccessClaims) { c.NotBefore = testNow.Add(29 * time.Second) })},
		{"iat within leeway", with(func(c *token.AccessClaims) { c.IssuedAt, c.NotBefore = testNow.Add(29*time.Second), time.Time{} })},
		{"no nbf", with(func(c *token.AccessClaims) { c.NotBefore = time.Time{} })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := v.Verify(t.Context(), tc.raw); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestLeeway(t *testing.T) {
	k := testKey(t, token.EdDSA, "ed-1")
	raw := mustMint(t, k, fullClaims(testNow))
	exp := onWire(fullClaims(testNow)).ExpiresAt
	for _, tc := range []struct {
		name   string
		leeway time.Duration
		after  time.Duration // how long after exp the token is checked
		wantOK bool
	}{
		{"default, inside", 0, 29 * time.Second, true},
		{"default, outside", 0, 31 * time.Second, false},
		{"negative means default, inside", -time.Minute, 29 * time.Second, true},
		{"negative means default, outside", -time.Minute, 31 * time.Second, false},
		{"10s, inside", 10 * time.Second, 9 * time.Second, true},
		{"10s, outside", 10 * time.Second, 11 * time.Second, false},
		{"1h is capped at 2 min, inside", time.Hour, 119 * time.Second, true},
		{"1h is capped at 2 min, outside", time.Hour, 121 * time.Second, false},
		{"at exp exactly, no leeway left", time.Second, time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := verifierFor(k.Public())
			v.Leeway = tc.leeway
			v.Now = func() time.Time { return exp.Add(tc.after) }
			_, err := v.Verify(t.Context(), raw)
			if tc.wantOK && err != nil {
				t.Fatal(err)
			}
			if !tc.wantOK {
				wantInvalidToken(t, err, "has expired")
			}
		})
	}
}

type failingKeys struct{ err error }

func (f failingKeys) PublicKey(context.Context, string) (token.PublicKey, error) {
	return token.PublicKey{}, f.err
}

// TestVerifierFaults: a misconfigured verifier or a failing key store is the server's
// problem, reported as such, never as the client's invalid_token.
func TestVerifierFaults(t *testing.T) {
	k := testKey(t, token.ES256, "ec-1")
	raw := mustMint(t, k, fullClaims(testNow))
	storeDown := errors.New("database is unavailable")
	mislabelled := k.Public()
	mislabelled.Algorithm = token.RS256
	for _, tc := range []struct {
		name string
		v    token.Verifier
	}{
		{"no key set", token.Verifier{Issuer: testIssuer, Audience: testClientID}},
		{"no issuer", token.Verifier{Keys: keysOf(k.Public()), Audience: testClientID}},
		{"no audience", token.Verifier{Keys: keysOf(k.Public()), Issuer: testIssuer}},
		{"key store down", token.Verifier{Keys: failingKeys{storeDown}, Issuer: testIssuer, Audience: testClientID}},
		{"key store hands out a mislabelled key", token.Verifier{Keys: keyMap{"ec-1": mislabelled}, Issuer: testIssuer, Audience: testClientID}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.v.Now = func() time.Time { return testNow }
			_, err := tc.v.Verify(t.Context(), raw)
			if err == nil {
				t.Fatal("Verify succeeded")
			}
			if fe, ok := failure.As(err); ok {
				t.Fatalf("got failure %q (%s), want an internal error", fe.Code, fe.Description)
			}
		})
	}
	_, err := token.Verifier{Keys: failingKeys{storeDown}, Issuer: testIssuer, Audience: testClientID}.Verify(t.Context(), raw)
	if !errors.Is(err, storeDown) {
		t.Errorf("error %v does not wrap the key store's", err)
	}
	// A KeySet's unknown-key error is kept as the cause.
	_, err = verifierFor().Verify(t.Context(), raw)
	wantInvalidToken(t, err, "signing key is unknown")
	if !errors.Is(err, token.ErrUnknownKey) {
		t.Errorf("error %v does not wrap ErrUnknownKey", err)
	}
}

func TestMintRefuses(t *testing.T) {
	k := testKey(t, token.ES256, "ec-1")
	mislabelled := k
	mislabelled.Algorithm = token.RS256
	noID := k
	noID.ID = ""
	for _, tc := range []struct {
		name string
		key  token.SigningKey
		mod  func(c *token.AccessClaims)
	}{
		{"key of another algorithm", mislabelled, func(*token.AccessClaims) {}},
		{"key without id", noID, func(*token.AccessClaims) {}},
		{"no key", token.SigningKey{ID: "x", Algorithm: token.ES256}, func(*token.AccessClaims) {}},
		{"no iss", k, func(c *token.AccessClaims) { c.Issuer = "" }},
		{"no sub", k, func(c *token.AccessClaims) { c.Subject = "" }},
		{"no aud", k, func(c *token.AccessClaims) { c.Audience = nil }},
		{"empty aud", k, func(c *token.AccessClaims) { c.Audience = []string{testClientID, ""} }},
		{"no jti", k, func(c *token.AccessClaims) { c.ID = "" }},
		{"no client_id", k, func(c *token.AccessClaims) { c.ClientID = "" }},
		{"no iat", k, func(c *token.AccessClaims) { c.IssuedAt = time.Time{} }},
		{"no exp", k, func(c *token.AccessClaims) { c.ExpiresAt = time.Time{} }},
		{"exp before iat", k, func(c *token.AccessClaims) { c.ExpiresAt = c.IssuedAt.Add(-time.Second) }},
		{"too large to verify", k, func(c *token.AccessClaims) {
			c.Permissions = slices.Repeat([]string{"permission:with:a:long:name"}, 1000)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fullClaims(testNow)
			tc.mod(&c)
			if raw, err := token.Mint(tc.key, c); err == nil {
				t.Fatalf("Mint = %.40s...", raw)
			}
		})
	}
}
