package project

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Settings is a project's settings document, stored as JSON in store.Project.Settings. Every
// field has a safe default (DefaultSettings); a stored document that lacks a field (because it
// was written before the field existed) decodes with that field's default, so new fields never
// need a data migration.
//
// Every setting must be a struct field or a scalar/list: Apply derives the set of known keys from
// the encoded defaults, so a map-valued setting would need its own rule there.
type Settings struct {
	// AllowedOrigins are the browser origins (scheme://host[:port]) allowed to call the API.
	AllowedOrigins []string `json:"allowed_origins"`
	// RedirectURIs are the exact URLs the project may redirect to after a login.
	RedirectURIs []string          `json:"redirect_uris"`
	LoginMethods LoginMethods      `json:"login_methods"`
	AllowSignup  bool              `json:"allow_signup"`
	Tokens       TokenSettings     `json:"tokens"`
	Codes        CodeSettings      `json:"codes"`
	MagicLink    MagicLinkSettings `json:"magic_link"`
	MFA          MFASettings       `json:"mfa"`
	Passkey      PasskeySettings   `json:"passkey"`
	Branding     Branding          `json:"branding"`
	Protect      ProtectSettings   `json:"protect"`
	Password     PasswordSettings  `json:"password"`
	Emails       EmailSettings     `json:"emails"`
	OIDC         OIDCSettings      `json:"oidc"`
}

// OIDCSettings shape the project as an OpenID Connect client of Latchkey's OpenID Provider.
type OIDCSettings struct {
	// FirstParty projects are the operator's own apps: their users are never asked to consent.
	// Third-party projects show a consent screen listing the scopes asked for.
	FirstParty bool `json:"first_party"`
	// PostLogoutRedirectURIs are the exact URLs RP-initiated logout may return to.
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
	// IDTokenLifetimeSeconds is how long an id_token is valid.
	IDTokenLifetimeSeconds int `json:"id_token_lifetime"`
	// AllowedScopes are the scopes the project may be granted; any other is dropped.
	AllowedScopes []string `json:"allowed_scopes"`
	// TokenEndpointAuthMethod is client_secret_basic, client_secret_post, or none (a public
	// client such as an SPA, which must then use PKCE).
	TokenEndpointAuthMethod string `json:"token_endpoint_auth_method"`
	// OfflineAccessByDefault grants offline_access (and so a refresh token) to first-party
	// projects that did not ask for it.
	OfflineAccessByDefault bool `json:"offline_access_by_default"`
	// Locales are the languages the hosted login page offers, first the default.
	Locales []string `json:"locales"`
}

// Token endpoint client authentication methods.
const (
	AuthMethodBasic = "client_secret_basic"
	AuthMethodPost  = "client_secret_post"
	AuthMethodNone  = "none"
)

// IDTokenLifetime is how long an id_token is valid.
func (o OIDCSettings) IDTokenLifetime() time.Duration { return seconds(o.IDTokenLifetimeSeconds) }

// EmailSettings shape which addresses new accounts may have. Accounts are always found by the
// address's lookup key (store.EmailKey: IDNA ASCII domain, only A–Z case-folded), so a
// look-alike never reaches another account; these settings only decide whether one may be
// created.
type EmailSettings struct {
	// AllowLookalikeAddresses accepts, at sign-up and when a user is created or given a new
	// address, addresses with compatibility characters (full-width letters, ligatures, the
	// KELVIN SIGN), characters that case-fold to an ASCII letter (U+0130, U+0131, U+017F) or
	// letters of several scripts in one part. Off by default: such addresses display as
	// someone else's.
	AllowLookalikeAddresses bool `json:"allow_lookalike_addresses"`
}

// PasswordSettings shape passwords, when login_methods.password is on.
type PasswordSettings struct {
	// MinLength in code points: 8 at least (NIST SP 800-63B); 15 is recommended when the
	// password is the only factor (mfa.policy off).
	MinLength int `json:"min_length"`
}

// HardLockAfter is the most consecutive failures an account may have (NIST SP 800-63B
// §5.2.2): past it, it stays locked until its owner unlocks it through their verified email.
const HardLockAfter = 100

// ProtectSettings tune attack protection. The defaults stop online guessing and credential
// stuffing without locking out people who mistype.
type ProtectSettings struct {
	// SlowAfter failures of one account from one IP, each further attempt waits longer
	// (1 s, 2 s, 4 s ... up to 30 s).
	SlowAfter int `json:"slow_after"`
	// LockAfter failures of one account from one IP lock that pair for LockSeconds; other IPs,
	// the owner's among them, are not affected.
	LockAfter int `json:"lock_after"`
	// AccountLockAfter failures of one account from all IPs lock the account for LockSeconds.
	AccountLockAfter int `json:"account_lock_after"`
	LockSeconds      int `json:"lock_seconds"`
	// IPFailuresPerHour failures from one IP (an IPv6 /64) across accounts throttle the IP
	// until the hour is over: the shape of credential stuffing.
	IPFailuresPerHour int `json:"ip_failures_per_hour"`
	// SendsPerDestinationPerHour bounds the codes and links sent to one address or number from
	// all requesters; past it, each requester that has not sent to it this hour may still send
	// one with a solved bot check, so that strangers cannot spend the owner's budget.
	SendsPerDestinationPerHour int `json:"sends_per_destination_per_hour"`
	// SendsPerRequesterPerHour bounds the codes and links sent to one address or number from
	// one requester (an IP, or an IPv6 /64).
	SendsPerRequesterPerHour int `json:"sends_per_requester_per_hour"`
	// SMSPerPrefixPerHour bounds the SMS sent to numbers of one country calling code (its
	// first three digits), against SMS pumping.
	SMSPerPrefixPerHour int `json:"sms_per_prefix_per_hour"`
	// AuthorizeRequestsPerHour bounds the new OIDC authorization requests (/v1/authorize and
	// its aliases) one IP (an IPv6 /64) may start in an hour: each is a stored row, so without
	// a bound one address could fill the table. The default is far above what people signing
	// in from one address (an office behind NAT) start.
	AuthorizeRequestsPerHour int `json:"authorize_requests_per_hour"`
	// AllowCIDRs are never throttled by IP and skip the bot check (account locks still apply);
	// BlockCIDRs are refused.
	AllowCIDRs []string `json:"allow_cidrs"`
	BlockCIDRs []string `json:"block_cidrs"`
	// BotCheck says when sign-up and send requests must prove they are not a bot: "off",
	// "risk" (when their IP has been failing or sending a lot) or "always".
	BotCheck string `json:"bot_check"`
	// BotProvider is how: "altcha" (a proof of work from GET /api/v1/protect/challenge, no
	// third party), "turnstile" or "hcaptcha" (their secrets are the server's configuration).
	BotProvider string `json:"bot_provider"`
}

// Bot checks and their providers.
const (
	BotCheckOff    = "off"
	BotCheckRisk   = "risk"
	BotCheckAlways = "always"

	BotProviderAltcha    = "altcha"
	BotProviderTurnstile = "turnstile"
	BotProviderHCaptcha  = "hcaptcha"
)

// LockDuration is how long a lock lasts.
func (p ProtectSettings) LockDuration() time.Duration { return seconds(p.LockSeconds) }

// LoginMethods says which first factors the project offers.
type LoginMethods struct {
	MagicLink bool `json:"magic_link"`
	EmailOTP  bool `json:"email_otp"`
	PhoneOTP  bool `json:"phone_otp"`
	Passkey   bool `json:"passkey"`
	Password  bool `json:"password"`
}

// Signing algorithms a project may choose for its tokens.
const (
	AlgRS256 = "RS256"
	AlgES256 = "ES256"
	AlgEdDSA = "EdDSA"
)

// TokenSettings are the lifetimes and algorithm of the tokens and sessions a project issues.
type TokenSettings struct {
	SigningAlgorithm              string `json:"signing_algorithm"`
	AccessTokenTTLSeconds         int    `json:"access_token_ttl_seconds"`
	RefreshTokenTTLSeconds        int    `json:"refresh_token_ttl_seconds"`
	SessionIdleTimeoutSeconds     int    `json:"session_idle_timeout_seconds"`
	SessionAbsoluteTimeoutSeconds int    `json:"session_absolute_timeout_seconds"`
}

// AccessTokenTTL is the lifetime of an access token.
func (t TokenSettings) AccessTokenTTL() time.Duration { return seconds(t.AccessTokenTTLSeconds) }

// RefreshTokenTTL is the lifetime of a refresh token.
func (t TokenSettings) RefreshTokenTTL() time.Duration { return seconds(t.RefreshTokenTTLSeconds) }

// SessionIdleTimeout is how long a session lives without use.
func (t TokenSettings) SessionIdleTimeout() time.Duration {
	return seconds(t.SessionIdleTimeoutSeconds)
}

// SessionAbsoluteTimeout is how long a session lives at most.
func (t TokenSettings) SessionAbsoluteTimeout() time.Duration {
	return seconds(t.SessionAbsoluteTimeoutSeconds)
}

// CodeSettings shape the one-time codes sent by email and SMS.
type CodeSettings struct {
	Length      int `json:"length"`
	TTLSeconds  int `json:"ttl_seconds"`
	MaxAttempts int `json:"max_attempts"`
}

// TTL is how long a code is valid.
func (c CodeSettings) TTL() time.Duration { return seconds(c.TTLSeconds) }

// MagicLinkSettings shape magic links.
type MagicLinkSettings struct {
	TTLSeconds int `json:"ttl_seconds"`
}

// TTL is how long a magic link is valid.
func (m MagicLinkSettings) TTL() time.Duration { return seconds(m.TTLSeconds) }

// MFA policies.
const (
	MFAOff      = "off"
	MFAOptional = "optional"
	MFARequired = "required"
)

// MFA factors a project may offer as a second factor.
const (
	FactorOTP          = "otp"
	FactorSMS          = "sms"
	FactorEmail        = "email"
	FactorPasskey      = "passkey"
	FactorRecoveryCode = "recovery-code"
)

var knownFactors = []string{FactorOTP, FactorSMS, FactorEmail, FactorPasskey, FactorRecoveryCode}

// MFASettings say whether a second factor is asked for, and which factors are offered.
type MFASettings struct {
	Policy  string   `json:"policy"`
	Factors []string `json:"factors"`
}

// User verification requirements a project may set for passkeys (WebAuthn's
// UserVerificationRequirement).
const (
	UserVerificationPreferred = "preferred"
	UserVerificationRequired  = "required"
)

// PasskeySettings shape the project's WebAuthn relying party.
type PasskeySettings struct {
	// RPID is the relying party id: a domain that every allowed origin is on (or lists in
	// /.well-known/webauthn). "" means the host of the first allowed origin.
	RPID string `json:"rp_id"`
	// RPName is the name authenticators show; "" means the branding display name or the
	// project name.
	RPName string `json:"rp_name"`
	// UserVerification is "preferred" or "required" (every passkey ceremony must verify the
	// user: PIN or biometrics).
	UserVerification string `json:"user_verification"`
}

// EffectiveRPID is the relying party id passkeys are created for: the setting, else the host of
// the first allowed origin that is a domain, else fallbackHost (the server's own host). An IP
// address can never be an RP id, so a fallback that is one gives "localhost", which browsers
// accept for local development. Set the RP id explicitly in production: passkeys are bound to
// it, and a default drawn from the origin list moves when the list is reordered.
func (s Settings) EffectiveRPID(fallbackHost string) string {
	if s.Passkey.RPID != "" {
		return s.Passkey.RPID
	}
	for _, o := range s.AllowedOrigins {
		if u, err := url.Parse(o); err == nil && u.Hostname() != "" && net.ParseIP(u.Hostname()) == nil {
			return u.Hostname()
		}
	}
	if net.ParseIP(fallbackHost) != nil {
		return "localhost"
	}
	return fallbackHost
}

// Branding is what the hosted pages show of the project.
type Branding struct {
	DisplayName     string `json:"display_name"`
	LogoURL         string `json:"logo_url"`
	PrimaryColor    string `json:"primary_color"`
	BackgroundColor string `json:"background_color"`
}

const (
	day = 24 * 60 * 60
	// maxListLen bounds the origin and redirect URI lists: they are checked on every request.
	maxListLen = 100
	// maxURLLen bounds any URL in the settings.
	maxURLLen = 2048
)

// Brand is how messages, authenticator apps and pages name the project: its display name, else
// projectName (the project's own name).
func (s Settings) Brand(projectName string) string {
	if s.Branding.DisplayName != "" {
		return s.Branding.DisplayName
	}
	return projectName
}

// DefaultSettings returns the settings of a new project: passwordless methods on, password and
// SMS off (SMS costs money and must be configured), RS256 tokens (what SSOJet issues), and
// short-lived codes and links.
func DefaultSettings() Settings {
	return Settings{
		AllowedOrigins: []string{},
		RedirectURIs:   []string{},
		LoginMethods:   LoginMethods{MagicLink: true, EmailOTP: true, Passkey: true},
		AllowSignup:    true,
		Tokens: TokenSettings{
			SigningAlgorithm:              AlgRS256,
			AccessTokenTTLSeconds:         900,
			RefreshTokenTTLSeconds:        30 * day,
			SessionIdleTimeoutSeconds:     7 * day,
			SessionAbsoluteTimeoutSeconds: 30 * day,
		},
		Codes:     CodeSettings{Length: 6, TTLSeconds: 300, MaxAttempts: 5},
		MagicLink: MagicLinkSettings{TTLSeconds: 900},
		MFA:       MFASettings{Policy: MFAOff, Factors: []string{FactorOTP, FactorRecoveryCode}},
		Passkey:   PasskeySettings{UserVerification: UserVerificationPreferred},
		Branding:  Branding{PrimaryColor: "#4f46e5", BackgroundColor: "#ffffff"},
		Protect: ProtectSettings{SlowAfter: 3, LockAfter: 10, AccountLockAfter: 50, LockSeconds: 900,
			IPFailuresPerHour: 100, SendsPerDestinationPerHour: 30, SendsPerRequesterPerHour: 10, SMSPerPrefixPerHour: 200,
			AuthorizeRequestsPerHour: 300,
			AllowCIDRs:               []string{}, BlockCIDRs: []string{}, BotCheck: BotCheckRisk, BotProvider: BotProviderAltcha},
		Password: PasswordSettings{MinLength: 8},
		OIDC: OIDCSettings{FirstParty: true, PostLogoutRedirectURIs: []string{}, IDTokenLifetimeSeconds: 3600,
			AllowedScopes:           []string{"openid", "profile", "email", "phone", "offline_access", "organization", "roles"},
			TokenEndpointAuthMethod: AuthMethodBasic, OfflineAccessByDefault: true, Locales: []string{"en", "de"}},
	}
}

// DecodeSettings decodes a stored settings document. Fields the document lacks get their
// defaults, and fields this version does not know are ignored, so documents written by older or
// newer versions both decode. An empty document is the defaults.
func DecodeSettings(doc []byte) (Settings, error) {
	s := DefaultSettings()
	if len(bytes.TrimSpace(doc)) == 0 {
		return s, nil
	}
	if err := json.Unmarshal(doc, &s); err != nil {
		return Settings{}, fmt.Errorf("decode project settings: %w", err)
	}
	s.normalize()
	return s, nil
}

// Encode returns the document to store.
func (s Settings) Encode() ([]byte, error) {
	s = s.clone()
	s.normalize()
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode project settings: %w", err)
	}
	return b, nil
}

// clone returns a copy that shares no slices with s, so that decoding into it cannot change s.
func (s Settings) clone() Settings {
	s.AllowedOrigins = slices.Clone(s.AllowedOrigins)
	s.RedirectURIs = slices.Clone(s.RedirectURIs)
	s.MFA.Factors = slices.Clone(s.MFA.Factors)
	s.Protect.AllowCIDRs = slices.Clone(s.Protect.AllowCIDRs)
	s.Protect.BlockCIDRs = slices.Clone(s.Protect.BlockCIDRs)
	s.OIDC.PostLogoutRedirectURIs = slices.Clone(s.OIDC.PostLogoutRedirectURIs)
	s.OIDC.AllowedScopes = slices.Clone(s.OIDC.AllowedScopes)
	s.OIDC.Locales = slices.Clone(s.OIDC.Locales)
	return s
}

// normalize puts values in their canonical form: lists are never null and hold no duplicates,
// and origins are lower case without a trailing slash, the form browsers send in Origin.
func (s *Settings) normalize() {
	for i, o := range s.AllowedOrigins {
		o = strings.ToLower(strings.TrimSpace(o))
		if strings.Count(o, "/") == 3 && strings.HasSuffix(o, "/") {
			o = strings.TrimSuffix(o, "/")
		}
		s.AllowedOrigins[i] = o
	}
	for i, u := range s.RedirectURIs {
		s.RedirectURIs[i] = strings.TrimSpace(u)
	}
	for i, f := range s.MFA.Factors {
		s.MFA.Factors[i] = strings.ToLower(strings.TrimSpace(f))
	}
	s.AllowedOrigins = dedupe(s.AllowedOrigins)
	s.RedirectURIs = dedupe(s.RedirectURIs)
	s.MFA.Factors = dedupe(s.MFA.Factors)
	for _, list := range []*[]string{&s.Protect.AllowCIDRs, &s.Protect.BlockCIDRs} {
		for i, c := range *list {
			(*list)[i] = strings.TrimSpace(c)
		}
		*list = dedupe(*list)
	}
	s.Passkey.RPID = strings.ToLower(strings.TrimSpace(s.Passkey.RPID))
	s.Passkey.RPName = strings.TrimSpace(s.Passkey.RPName)
	s.Passkey.UserVerification = strings.ToLower(strings.TrimSpace(s.Passkey.UserVerification))
	s.Protect.BotCheck = strings.ToLower(strings.TrimSpace(s.Protect.BotCheck))
	s.Protect.BotProvider = strings.ToLower(strings.TrimSpace(s.Protect.BotProvider))
	s.Branding.DisplayName = strings.TrimSpace(s.Branding.DisplayName)
	s.Branding.LogoURL = strings.TrimSpace(s.Branding.LogoURL)
	s.Branding.PrimaryColor = strings.TrimSpace(s.Branding.PrimaryColor)
	s.Branding.BackgroundColor = strings.TrimSpace(s.Branding.BackgroundColor)
	for _, list := range []*[]string{&s.OIDC.PostLogoutRedirectURIs, &s.OIDC.AllowedScopes, &s.OIDC.Locales} {
		for i, v := range *list {
			(*list)[i] = strings.TrimSpace(v)
		}
		*list = dedupe(*list)
	}
	s.OIDC.TokenEndpointAuthMethod = strings.ToLower(strings.TrimSpace(s.OIDC.TokenEndpointAuthMethod))
}

func dedupe(in []string) []string {
	out := make([]string, 0, len(in))
	for _, v := range in {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// Apply merges patch, a partial settings document, onto s and returns the result, normalised but
// not yet validated. Objects merge key by key, lists and scalars replace, and null resets a
// setting to its default (JSON Merge Patch, RFC 7396, over a document whose every key exists).
// A key that is not a setting is refused, naming it: a typo must not be silently ignored.
func (s Settings) Apply(patch []byte) (Settings, error) {
	var p any
	dec := json.NewDecoder(bytes.NewReader(patch))
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil {
		return Settings{}, &FieldError{Field: "settings", Reason: "must be a JSON object"}
	}
	obj, ok := p.(map[string]any)
	if !ok {
		return Settings{}, &FieldError{Field: "settings", Reason: "must be a JSON object"}
	}
	if err := resolvePatch(obj, defaultsTree(), ""); err != nil {
		return Settings{}, err
	}
	merged, err := json.Marshal(obj)
	if err != nil {
		return Settings{}, fmt.Errorf("re-encode settings patch: %w", err)
	}
	out := s.clone()
	if err := json.Unmarshal(merged, &out); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) && typ.Field != "" {
			return Settings{}, &FieldError{Field: typ.Field, Reason: "must be " + kindName(typ.Type.Kind().String())}
		}
		return Settings{}, &FieldError{Field: "settings", Reason: "is not a valid settings document"}
	}
	out.normalize()
	return out, nil
}

// defaultsTree is the default document as generic JSON: its keys are exactly the known settings.
func defaultsTree() map[string]any {
	b, err := json.Marshal(DefaultSettings())
	if err != nil {
		panic(fmt.Sprintf("project: encode default settings: %v", err)) // a static value
	}
	var tree map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil {
		panic(fmt.Sprintf("project: decode default settings: %v", err))
	}
	return tree
}

// resolvePatch refuses unknown keys and replaces each null with the default it resets to. Keys
// are visited in sorted order so that the key named in an error does not depend on map order.
func resolvePatch(patch, defaults map[string]any, prefix string) error {
	keys := make([]string, 0, len(patch))
	for k := range patch {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		path := prefix + k
		def, known := defaults[k]
		if !known {
			return &FieldError{Field: path, Reason: "is not a known setting"}
		}
		v := patch[k]
		if v == nil {
			patch[k] = def
			continue
		}
		defObj, isObj := def.(map[string]any)
		if !isObj {
			continue
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return &FieldError{Field: path, Reason: "must be an object"}
		}
		if err := resolvePatch(obj, defObj, path+"."); err != nil {
			return err
		}
	}
	return nil
}

func kindName(goKind string) string {
	switch {
	case goKind == "string":
		return "a string"
	case goKind == "bool":
		return "a boolean"
	case strings.HasPrefix(goKind, "int"), strings.HasPrefix(goKind, "uint"):
		return "a whole number in range"
	case goKind == "slice":
		return "an array"
	case goKind == "struct", goKind == "map":
		return "an object"
	}
	return "a " + goKind
}

func seconds(n int) time.Duration { return time.Duration(n) * time.Second }
