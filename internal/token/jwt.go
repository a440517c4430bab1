package token

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchkey-dev/latchkey/internal/failure"
)

// accessTokenType is the typ header of access tokens (RFC 9068 §2.1). Checking it keeps an ID
// token, a logout token or any other JWT signed with the same key from passing as an access
// token (RFC 8725 §3.11).
const accessTokenType = "at+jwt"

// maxAccessTokenSize caps what Verify will parse, before any decoding: a token is attacker
// input, and base64 plus JSON decoding cost grows with it. Mint refuses to produce larger
// tokens, so every token we issue can be verified.
const maxAccessTokenSize = 16 << 10

// Clock skew allowed on exp, nbf and iat. The ceiling keeps a misconfiguration from turning
// expiry into a suggestion; key rotation (signingkeys.go) retires keys only after it.
const (
	defaultLeeway = 30 * time.Second
	maxLeeway     = 2 * time.Minute
)

// acceptedAlgorithms is the alg allowlist handed to go-jose, which refuses anything else
// before it looks at a key. Verify additionally requires alg to equal the key's own algorithm.
var acceptedAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}

// AccessClaims are the claims of a Latchkey access token (API.md §2, RFC 9068 §2.2).
type AccessClaims struct {
	Issuer          string    // iss: the server's public URL
	Subject         string    // sub: the user id, or the client id for machine tokens
	Audience        []string  // aud: the client id(s) the token is for
	ExpiresAt       time.Time // exp
	NotBefore       time.Time // nbf; zero = omitted
	IssuedAt        time.Time // iat
	ID              string    // jti
	ClientID        string    // client_id
	AuthorizedParty string    // azp
	SessionID       string    // sid ("" for machine-to-machine tokens)
	AMR             []string  // amr: how the user authenticated (RFC 8176)
	OrgID           string    // org_id: the organization the roles and permissions are in
	Roles           []string  // roles: role slugs in OrgID
	Permissions     []string  // permissions: permission slugs in OrgID
	Scope           string    // scope: space-separated; e.g. for client_credentials tokens
	GrantType       string    // gty: "client_credentials" for machine tokens, "" otherwise
}

// wireClaims is the JSON form of AccessClaims. Times are NumericDate seconds; pointers tell
// an absent time from zero. roles, permissions and amr are always arrays so that clients can
// iterate them without a null check.
type wireClaims struct {
	Issuer          string   `json:"iss"`
	Subject         string   `json:"sub"`
	Audience        audience `json:"aud"`
	ExpiresAt       *int64   `json:"exp"`
	NotBefore       *int64   `json:"nbf,omitempty"`
	IssuedAt        *int64   `json:"iat"`
	ID              string   `json:"jti"`
	ClientID        string   `json:"client_id"`
	AuthorizedParty string   `json:"azp,omitempty"`
	SessionID       string   `json:"sid,omitempty"`
	AMR             []string `json:"amr"`
	OrgID           string   `json:"org_id,omitempty"`
	Roles           []string `json:"roles"`
	Permissions     []string `json:"permissions"`
	Scope           string   `json:"scope,omitempty"`
	GrantType       string   `json:"gty,omitempty"`
}

// audience is aud: one audience is written as a string, as RFC 9068's examples and most
// issuers do, several as an array; both forms are read (RFC 7519 §4.1.3).
type audience []string

func (a audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

func (a *audience) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("aud is neither a string nor an array of strings: %w", err)
	}
	*a = list
	return nil
}

// Mint signs c with k as an RFC 9068 access token: header {"alg","kid","typ":"at+jwt"}, times
// as NumericDate seconds (sub-second parts are dropped), empty optional claims omitted except
// roles, permissions and amr, which are always arrays. The claims RFC 9068 requires (iss, sub,
// aud, exp, iat, jti, client_id) must be set: Verify refuses a token without them.
func Mint(k SigningKey, c AccessClaims) (string, error) {
	if err := k.check(); err != nil {
		return "", fmt.Errorf("mint access token with key %q: %w", k.ID, err)
	}
	if k.ID == "" {
		return "", errors.New("mint access token: the signing key has no id")
	}
	if err := c.mintable(); err != nil {
		return "", fmt.Errorf("mint access token: %w", err)
	}
	payload, err := json.Marshal(c.wire())
	if err != nil {
		return "", fmt.Errorf("mint access token: encode claims: %w", err)
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.Algorithm), Key: jose.JSONWebKey{Key: k.Private, KeyID: k.ID}},
		(&jose.SignerOptions{}).WithType(accessTokenType),
	)
	if err != nil {
		return "", fmt.Errorf("mint access token with key %q: %w", k.ID, err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("mint access token with key %q: sign: %w", k.ID, err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("mint access token with key %q: serialize: %w", k.ID, err)
	}
	if len(raw) > maxAccessTokenSize {
		return "", fmt.Errorf("mint access token: %d bytes is more than verifiers accept (%d)", len(raw), maxAccessTokenSize)
	}
	return raw, nil
}

// mintable reports a missing required claim: a programming error, not a client's.
func (c AccessClaims) mintable() error {
	switch {
	case c.Issuer == "":
		return errors.New("iss is required")
	case c.Subject == "":
		return errors.New("sub is required")
	case len(c.Audience) == 0 || slices.Contains(c.Audience, ""):
		return errors.New("aud is required and must not hold an empty value")
	case c.ID == "":
		return errors.New("jti is required")
	case c.ClientID == "":
		return errors.New("client_id is required")
	case c.IssuedAt.IsZero():
		return errors.New("iat is required")
	case c.ExpiresAt.IsZero():
		return errors.New("exp is required")
	case !c.ExpiresAt.After(c.IssuedAt):
		return errors.New("exp must be after iat")
	}
	return nil
}

func (c AccessClaims) wire() wireClaims {
	w := wireClaims{
		Issuer: c.Issuer, Subject: c.Subject, Audience: c.Audience,
		ExpiresAt: numericDate(c.ExpiresAt), NotBefore: numericDate(c.NotBefore), IssuedAt: numericDate(c.IssuedAt),
		ID: c.ID, ClientID: c.ClientID, AuthorizedParty: c.AuthorizedParty, SessionID: c.SessionID,
		AMR: c.AMR, OrgID: c.OrgID, Roles: c.Roles, Permissions: c.Permissions,
		Scope: c.Scope, GrantType: c.GrantType,
	}
	if w.AMR == nil {
		w.AMR = []string{}
	}
	if w.Roles == nil {
		w.Roles = []string{}
	}
	if w.Permissions == nil {
		w.Permissions = []string{}
	}
	return w
}

func (w wireClaims) claims() AccessClaims {
	return AccessClaims{
		Issuer: w.Issuer, Subject: w.Subject, Audience: w.Audience,
		ExpiresAt: fromNumericDate(w.ExpiresAt), NotBefore: fromNumericDate(w.NotBefore), IssuedAt: fromNumericDate(w.IssuedAt),
		ID: w.ID, ClientID: w.ClientID, AuthorizedParty: w.AuthorizedParty, SessionID: w.SessionID,
		AMR: w.AMR, OrgID: w.OrgID, Roles: w.Roles, Permissions: w.Permissions,
		Scope: w.Scope, GrantType: w.GrantType,
	}
}

// numericDate is t in whole seconds, truncated: exp then errs on the early side.
func numericDate(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	s := t.Unix()
	return &s
}

func fromNumericDate(s *int64) time.Time {
	if s == nil {
		return time.Time{}
	}
	return time.Unix(*s, 0).UTC()
}

// KeySet finds a published verifying key by kid. It must look only among this server's own
// keys for the project the token is being verified for, so that kid is a lookup and never a
// path, URL or another project's key (RFC 8725 §3.10).
type KeySet interface {
	// PublicKey returns the key with this kid, or an error wrapping ErrUnknownKey.
	PublicKey(ctx context.Context, kid string) (PublicKey, error)
}

// ErrUnknownKey is what a KeySet wraps when no key has the kid asked for. Verify turns it into
// invalid_token; any other KeySet error is the server's and is passed on.
var ErrUnknownKey = errors.New("unknown signing key")

// maxKeyIDSize bounds a kid before it reaches a KeySet (our kids are 24 characters), so a
// hostile token cannot make the store look up kilobytes.
const maxKeyIDSize = 256

// Verifier checks access tokens of one project.
type Verifier struct {
	Keys     KeySet
	Issuer   string           // iss must equal this exactly
	Audience string           // the client id the token must be for: one of aud
	Now      func() time.Time // nil = time.Now
	Leeway   time.Duration    // clock skew allowed on exp/nbf/iat; 0 = 30s; capped at 2 min
}

// Verify checks raw as an access token and returns its claims. Every reason to refuse a token
// is a failure.Error of kind Unauthenticated and code invalid_token whose description says
// why without repeating the token; only a KeySet failure other than ErrUnknownKey, or a
// Verifier missing Keys, Issuer or Audience, is returned as an internal error.
//
// The order matters: the size is checked before any decoding, the header before any key is
// looked up, the key's algorithm before the signature, and the signature before any claim is
// trusted (RFC 8725 §3.1–3.11).
func (v Verifier) Verify(ctx context.Context, raw string) (AccessClaims, error) {
	if v.Keys == nil || v.Issuer == "" || v.Audience == "" {
		return AccessClaims{}, errors.New("verify access token: the verifier needs Keys, Issuer and Audience")
	}
	if len(raw) > maxAccessTokenSize {
		return AccessClaims{}, rejectToken("the access token is too large", nil)
	}
	// Exactly three parts: a JWE (five parts) or a JSON serialization is refused here, before
	// go-jose would try to make sense of it.
	if strings.Count(raw, ".") != 2 {
		return AccessClaims{}, rejectToken("the access token is not a compact JWS", nil)
	}
	if err := checkHeaderMembers(raw[:strings.IndexByte(raw, '.')]); err != nil {
		return AccessClaims{}, err
	}
	jws, err := jose.ParseSignedCompact(raw, acceptedAlgorithms)
	if err != nil {
		return AccessClaims{}, rejectToken("the access token is malformed", err)
	}
	if len(jws.Signatures) != 1 {
		return AccessClaims{}, rejectToken("the access token must carry exactly one signature", nil)
	}
	// Compact serialization has only a protected header, so this is all of it.
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !isAccessTokenType(typ) {
		return AccessClaims{}, rejectToken("the token is not an access token (typ must be at+jwt)", nil)
	}
	if h.KeyID == "" {
		return AccessClaims{}, rejectToken("the access token names no key (kid)", nil)
	}
	if len(h.KeyID) > maxKeyIDSize {
		return AccessClaims{}, rejectToken("the access token's signing key is unknown", nil)
	}
	key, err := v.Keys.PublicKey(ctx, h.KeyID)
	if errors.Is(err, ErrUnknownKey) {
		return AccessClaims{}, rejectToken("the access token's signing key is unknown", err)
	}
	if err != nil {
		return AccessClaims{}, fmt.Errorf("verify access token: look up key %q: %w", h.KeyID, err)
	}
	if err := checkPublicKey(key.Algorithm, key.Key); err != nil {
		// A store handing out a broken key is the server's fault, not the client's.
		return AccessClaims{}, fmt.Errorf("verify access token: key %q is unusable: %w", h.KeyID, err)
	}
	// The algorithm is the key's, never the token's: a token may only confirm it.
	if Algorithm(h.Algorithm) != key.Algorithm {
		return AccessClaims{}, rejectToken("the access token's algorithm does not match its key",
			fmt.Errorf("header alg %q, key %q is %s", h.Algorithm, h.KeyID, key.Algorithm))
	}
	payload, err := jws.Verify(key.Key)
	if err != nil {
		return AccessClaims{}, rejectToken("the access token's signature is invalid", err)
	}
	// encoding/json matches names case-insensitively; harmless here, as only a payload we
	// signed gets this far.
	var w wireClaims
	if err := json.Unmarshal(payload, &w); err != nil {
		return AccessClaims{}, rejectToken("the access token's claims are malformed", err)
	}
	if err := v.checkClaims(w); err != nil {
		return AccessClaims{}, err
	}
	return w.claims(), nil
}

// checkClaims checks what the signature cannot: who issued the token, for whom, and when.
func (v Verifier) checkClaims(w wireClaims) error {
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	leeway := v.Leeway
	if leeway <= 0 {
		leeway = defaultLeeway
	}
	leeway = min(leeway, maxLeeway)

	switch {
	case w.Issuer != v.Issuer:
		return rejectToken("the access token was issued by another issuer", nil)
	case !slices.Contains(w.Audience, v.Audience):
		return rejectToken("the access token is for another audience", nil)
	case w.ExpiresAt == nil:
		return rejectToken("the access token has no expiry", nil)
	case !now.Add(-leeway).Before(time.Unix(*w.ExpiresAt, 0)):
		return rejectToken("the access token has expired", nil)
	case w.NotBefore != nil && time.Unix(*w.NotBefore, 0).After(now.Add(leeway)):
		return rejectToken("the access token is not valid yet", nil)
	case w.IssuedAt == nil:
		return rejectToken("the access token has no issue time", nil)
	case time.Unix(*w.IssuedAt, 0).After(now.Add(leeway)):
		return rejectToken("the access token was issued in the future", nil)
	case w.Subject == "" || w.ID == "" || w.ClientID == "":
		// RFC 9068 §2.2 requires them; Mint always writes them.
		return rejectToken("the access token lacks a required claim (sub, jti or client_id)", nil)
	}
	return nil
}

// checkHeaderMembers refuses a header with any member besides alg, kid and typ, which are all
// that Mint writes. That shuts out, before go-jose parses them, keys carried by the token
// itself (jwk, x5c) or fetched from where it says (jku, x5u), critical extensions (crit, b64)
// and anything a future library version might start to honour (RFC 8725 §3.10).
func checkHeaderMembers(encoded string) error {
	b, err := base64.RawURLEncoding.DecodeString(encoded)
	if err != nil {
		return rejectToken("the access token is malformed", fmt.Errorf("header: %w", err))
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(b, &header); err != nil {
		return rejectToken("the access token is malformed", fmt.Errorf("header: %w", err))
	}
	// Named refusals first, so that the reason given does not depend on map order.
	for _, name := range []string{"jwk", "jku", "x5c", "x5u", "x5t", "x5t#S256"} {
		if _, ok := header[name]; ok {
			return rejectToken("the access token may not carry or point to its own key", fmt.Errorf("header member %q", name))
		}
	}
	for _, name := range []string{"crit", "b64"} {
		if _, ok := header[name]; ok {
			return rejectToken("the access token may not use critical header extensions", fmt.Errorf("header member %q", name))
		}
	}
	var alg string
	if raw, ok := header["alg"]; !ok || json.Unmarshal(raw, &alg) != nil {
		return rejectToken("the access token's algorithm is not accepted", errors.New("header: no alg, or not a string"))
	}
	if _, err := ParseAlgorithm(alg); err != nil {
		return rejectToken("the access token's algorithm is not accepted", err)
	}
	for name := range header {
		if name != "alg" && name != "kid" && name != "typ" {
			return rejectToken("the access token's header has an unexpected member", fmt.Errorf("header member %q", name))
		}
	}
	return nil
}

// isAccessTokenType accepts "at+jwt" and its full media type, in any case (RFC 9068 §4,
// RFC 7515 §4.1.9).
func isAccessTokenType(typ string) bool {
	return strings.EqualFold(typ, accessTokenType) || strings.EqualFold(typ, "application/"+accessTokenType)
}

// rejectToken is the error for a token that is not acceptable. The description is shown to
// the caller, so it says why in general terms and never includes token content; the cause
// goes to the log only.
func rejectToken(why string, cause error) error {
	return &failure.Error{Kind: failure.Unauthenticated, Code: "invalid_token", Description: why, Err: cause}
}
