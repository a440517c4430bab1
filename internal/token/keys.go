package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"
)

// Algorithm is a JWS signature algorithm that Latchkey signs access tokens with. Each key is
// bound to exactly one algorithm (RFC 8725 §3.1), so a token's alg header is only ever
// checked against the algorithm of the key its kid names.
type Algorithm string

// The accepted algorithms. There is deliberately no HMAC algorithm and no "none": access
// tokens are verified by third parties with the published key only.
const (
	// RS256 is RSASSA-PKCS1-v1_5 with SHA-256 on a 2048-bit key: what SSOJet issues and what
	// every client library verifies, hence the default.
	RS256 Algorithm = "RS256"
	// ES256 is ECDSA on P-256 with SHA-256: about 25 times cheaper to sign than RS256.
	ES256 Algorithm = "ES256"
	// EdDSA is Ed25519 (RFC 8037): the cheapest to sign, but not every client verifies it.
	EdDSA Algorithm = "EdDSA"
)

// rsaMinBits is the smallest RSA modulus accepted (RFC 7518 §3.3, NIST SP 800-131A).
const rsaMinBits = 2048

// rsaMaxBits bounds the cost of a signature or verification an oversized key would impose; it
// is also go-jose's limit for parsing JWKs.
const rsaMaxBits = 4096

// ParseAlgorithm returns the algorithm named s. Names are case-sensitive, as in JOSE, and
// only RS256, ES256 and EdDSA are accepted: "none", HMAC and everything else are refused.
func ParseAlgorithm(s string) (Algorithm, error) {
	switch a := Algorithm(s); a {
	case RS256, ES256, EdDSA:
		return a, nil
	}
	return "", fmt.Errorf("signing algorithm %q is not supported (want RS256, ES256 or EdDSA)", s)
}

// SigningKey is one project signing key with its private half. Parsing a key is not free
// (RSA in particular), so callers parse it once and cache it rather than per token.
type SigningKey struct {
	ID        string // the kid; unique among the keys a project publishes
	Algorithm Algorithm
	Private   crypto.Signer // *rsa.PrivateKey, *ecdsa.PrivateKey (P-256) or ed25519.PrivateKey
}

// GenerateKey makes a new key for alg from crypto/rand: RSA 2048 for RS256, P-256 for ES256,
// Ed25519 for EdDSA.
func GenerateKey(alg Algorithm, id string) (SigningKey, error) {
	if id == "" {
		return SigningKey{}, errors.New("generate signing key: a key id is required")
	}
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, rsaMinBits)
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return SigningKey{}, fmt.Errorf("generate signing key: algorithm %q is not supported", alg)
	}
	if err != nil {
		return SigningKey{}, fmt.Errorf("generate %s signing key: %w", alg, err)
	}
	return SigningKey{ID: id, Algorithm: alg, Private: priv}, nil
}

// MarshalPrivate encodes the private key as PKCS#8 DER, the form it is sealed and stored in.
func (k SigningKey) MarshalPrivate() ([]byte, error) {
	if err := k.check(); err != nil {
		return nil, fmt.Errorf("marshal signing key %q: %w", k.ID, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		return nil, fmt.Errorf("marshal signing key %q: %w", k.ID, err)
	}
	return der, nil
}

// ParsePrivateKey decodes a PKCS#8 DER private key and checks that it is of the kind alg
// needs, so that a key stored under the wrong algorithm fails here, once, rather than in
// every signature.
func ParsePrivateKey(id string, alg Algorithm, der []byte) (SigningKey, error) {
	if id == "" {
		return SigningKey{}, errors.New("parse signing key: a key id is required")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return SigningKey{}, fmt.Errorf("parse signing key %q: %w", id, err)
	}
	priv, ok := parsed.(crypto.Signer)
	if !ok {
		return SigningKey{}, fmt.Errorf("parse signing key %q: %T cannot sign", id, parsed)
	}
	k := SigningKey{ID: id, Algorithm: alg, Private: priv}
	if err := k.check(); err != nil {
		return SigningKey{}, fmt.Errorf("parse signing key %q: %w", id, err)
	}
	return k, nil
}

// check reports whether the private key is of the kind its algorithm needs.
func (k SigningKey) check() error {
	if k.Private == nil {
		return errors.New("no private key")
	}
	switch priv := k.Private.(type) {
	case *rsa.PrivateKey:
		return checkPublicKey(k.Algorithm, &priv.PublicKey)
	case *ecdsa.PrivateKey:
		return checkPublicKey(k.Algorithm, &priv.PublicKey)
	case ed25519.PrivateKey:
		if len(priv) != ed25519.PrivateKeySize {
			return errors.New("malformed Ed25519 private key")
		}
		return checkPublicKey(k.Algorithm, priv.Public())
	}
	return fmt.Errorf("%T is not an RSA, ECDSA or Ed25519 private key", k.Private)
}

// checkPublicKey reports whether pub is a key that alg verifies with. It is the one place
// that binds an algorithm to a key type, which is what stops alg-swap attacks.
func checkPublicKey(alg Algorithm, pub crypto.PublicKey) error {
	switch alg {
	case RS256:
		k, ok := pub.(*rsa.PublicKey)
		if !ok || k == nil || k.N == nil {
			return fmt.Errorf("RS256 needs an RSA key, not %T", pub)
		}
		if bits := k.N.BitLen(); bits < rsaMinBits || bits > rsaMaxBits {
			return fmt.Errorf("RSA key of %d bits: want %d to %d", bits, rsaMinBits, rsaMaxBits)
		}
	case ES256:
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok || k == nil {
			return fmt.Errorf("ES256 needs an ECDSA key, not %T", pub)
		}
		if k.Curve != elliptic.P256() {
			return errors.New("ES256 needs a P-256 key")
		}
	case EdDSA:
		k, ok := pub.(ed25519.PublicKey)
		if !ok {
			return fmt.Errorf("EdDSA needs an Ed25519 key, not %T", pub)
		}
		if len(k) != ed25519.PublicKeySize {
			return errors.New("malformed Ed25519 public key")
		}
	default:
		return fmt.Errorf("signing algorithm %q is not supported", alg)
	}
	return nil
}

// Public returns the verifying half of the key, as published.
func (k SigningKey) Public() PublicKey {
	p := PublicKey{ID: k.ID, Algorithm: k.Algorithm}
	if k.Private != nil {
		p.Key = k.Private.Public()
	}
	return p
}

// PublicKey is the verifying half of a signing key, as published in the JWKS.
type PublicKey struct {
	ID        string // the kid
	Algorithm Algorithm
	Key       crypto.PublicKey // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

func (p PublicKey) check() error {
	if p.ID == "" {
		return errors.New("no key id")
	}
	return checkPublicKey(p.Algorithm, p.Key)
}

// JWK renders the key as one JSON Web Key with kid, alg and use "sig", so that verifiers pin
// the algorithm to the key. Only public key types are accepted, so no private member (d, p,
// q, ...) can ever be rendered.
func (p PublicKey) JWK() ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("render JWK %q: %w", p.ID, err)
	}
	b, err := jose.JSONWebKey{Key: p.Key, KeyID: p.ID, Algorithm: string(p.Algorithm), Use: "sig"}.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("render JWK %q: %w", p.ID, err)
	}
	return b, nil
}

// ParsePublicJWK decodes one JWK as rendered by JWK. It requires kid and alg (a key without
// alg could be used with any algorithm), a "sig" use if use is given, a key type that matches
// alg, and no private members.
func ParsePublicJWK(b []byte) (PublicKey, error) {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(b); err != nil {
		return PublicKey{}, fmt.Errorf("parse JWK: %w", err)
	}
	if !jwk.IsPublic() {
		return PublicKey{}, fmt.Errorf("parse JWK %q: not a public key", jwk.KeyID)
	}
	if jwk.Use != "" && jwk.Use != "sig" {
		return PublicKey{}, fmt.Errorf("parse JWK %q: use %q is not \"sig\"", jwk.KeyID, jwk.Use)
	}
	alg, err := ParseAlgorithm(jwk.Algorithm)
	if err != nil {
		return PublicKey{}, fmt.Errorf("parse JWK %q: %w", jwk.KeyID, err)
	}
	p := PublicKey{ID: jwk.KeyID, Algorithm: alg, Key: jwk.Key}
	if err := p.check(); err != nil {
		return PublicKey{}, fmt.Errorf("parse JWK %q: %w", jwk.KeyID, err)
	}
	return p, nil
}

// JWKS renders {"keys":[...]} with the keys in the given order (callers list the signing key
// first). It refuses two keys with one kid: a verifier could pick either.
func JWKS(keys []PublicKey) ([]byte, error) {
	set := struct {
		Keys []json.RawMessage `json:"keys"`
	}{Keys: make([]json.RawMessage, 0, len(keys))}
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if seen[k.ID] {
			return nil, fmt.Errorf("render JWKS: key id %q appears twice", k.ID)
		}
		seen[k.ID] = true
		b, err := k.JWK()
		if err != nil {
			return nil, fmt.Errorf("render JWKS: %w", err)
		}
		set.Keys = append(set.Keys, b)
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("render JWKS: %w", err)
	}
	return b, nil
}
