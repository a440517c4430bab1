package project

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// FieldError is one invalid setting: the setting's path in the document (such as
// "tokens.access_token_ttl_seconds" or "allowed_origins[2]") and why it is refused.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// ValidationError lists every invalid setting of a document, in document order.
type ValidationError []FieldError

func (v ValidationError) Error() string {
	parts := make([]string, len(v))
	for i, e := range v {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// Validate checks every setting and reports all the invalid ones at once (a ValidationError),
// or nil.
func (s Settings) Validate() error {
	var v validator
	v.urlList("allowed_origins", s.AllowedOrigins, checkOrigin)
	v.urlList("redirect_uris", s.RedirectURIs, checkRedirectURI)

	m := s.LoginMethods
	if !m.MagicLink && !m.EmailOTP && !m.PhoneOTP && !m.Passkey && !m.Password {
		v.add("login_methods", "at least one login method must be enabled")
	}

	t := s.Tokens
	if !slices.Contains([]string{AlgRS256, AlgES256, AlgEdDSA}, t.SigningAlgorithm) {
		v.add("tokens.signing_algorithm", "must be one of RS256, ES256, EdDSA")
	}
	v.between("tokens.access_token_ttl_seconds", t.AccessTokenTTLSeconds, 60, day)
	if v.between("tokens.refresh_token_ttl_seconds", t.RefreshTokenTTLSeconds, 60, 365*day) &&
		t.RefreshTokenTTLSeconds < t.AccessTokenTTLSeconds {
		v.add("tokens.refresh_token_ttl_seconds", "must not be shorter than tokens.access_token_ttl_seconds")
	}
	v.between("tokens.session_idle_timeout_seconds", t.SessionIdleTimeoutSeconds, 60, 365*day)
	if v.between("tokens.session_absolute_timeout_seconds", t.SessionAbsoluteTimeoutSeconds, 60, 365*day) &&
		t.SessionAbsoluteTimeoutSeconds < t.SessionIdleTimeoutSeconds {
		v.add("tokens.session_absolute_timeout_seconds", "must not be shorter than tokens.session_idle_timeout_seconds")
	}

	// Six digits at least: ASVS 5.0 6.5.4 asks 20 bits of entropy of an out-of-band code.
	v.between("codes.length", s.Codes.Length, 6, 8)
	v.between("codes.ttl_seconds", s.Codes.TTLSeconds, 60, 600)
	v.between("codes.max_attempts", s.Codes.MaxAttempts, 1, 10)
	v.between("magic_link.ttl_seconds", s.MagicLink.TTLSeconds, 60, 3600)

	if !slices.Contains([]string{MFAOff, MFAOptional, MFARequired}, s.MFA.Policy) {
		v.add("mfa.policy", "must be one of off, optional, required")
	}
	for i, f := range s.MFA.Factors {
		if !slices.Contains(knownFactors, f) {
			v.add(fmt.Sprintf("mfa.factors[%d]", i), "must be one of "+strings.Join(knownFactors, ", "))
		}
	}
	if s.MFA.Policy != MFAOff && len(s.MFA.Factors) == 0 {
		v.add("mfa.factors", "must name at least one factor when mfa.policy is not off")
	}

	pr := s.Protect
	v.between("protect.lock_after", pr.LockAfter, 3, HardLockAfter)
	v.between("protect.slow_after", pr.SlowAfter, 1, max(pr.LockAfter, 1))
	v.between("protect.account_lock_after", pr.AccountLockAfter, max(pr.LockAfter, 3), HardLockAfter)
	v.between("protect.lock_seconds", pr.LockSeconds, 10, day)
	v.between("protect.ip_failures_per_hour", pr.IPFailuresPerHour, 10, 1_000_000)
	v.between("protect.sends_per_destination_per_hour", pr.SendsPerDestinationPerHour, 1, 1000)
	v.between("protect.sends_per_requester_per_hour", pr.SendsPerRequesterPerHour, 1, 1000)
	v.between("protect.sms_per_prefix_per_hour", pr.SMSPerPrefixPerHour, 1, 1_000_000)
	v.between("protect.authorize_requests_per_hour", pr.AuthorizeRequestsPerHour, 10, 1_000_000)
	v.cidrs("protect.allow_cidrs", pr.AllowCIDRs)
	v.cidrs("protect.block_cidrs", pr.BlockCIDRs)
	if !slices.Contains([]string{BotCheckOff, BotCheckRisk, BotCheckAlways}, pr.BotCheck) {
		v.add("protect.bot_check", "must be one of off, risk, always")
	}
	if !slices.Contains([]string{BotProviderAltcha, BotProviderTurnstile, BotProviderHCaptcha}, pr.BotProvider) {
		v.add("protect.bot_provider", "must be one of altcha, turnstile, hcaptcha")
	}

	v.between("password.min_length", s.Password.MinLength, 8, 64)

	pk := s.Passkey
	if pk.RPID != "" {
		if reason := checkRPID(pk.RPID); reason != "" {
			v.add("passkey.rp_id", reason)
		}
	}
	if n := utf8.RuneCountInString(pk.RPName); n > 100 || strings.IndexFunc(pk.RPName, unicode.IsControl) >= 0 {
		v.add("passkey.rp_name", "must be at most 100 characters without control characters")
	}
	if !slices.Contains([]string{UserVerificationPreferred, UserVerificationRequired}, pk.UserVerification) {
		v.add("passkey.user_verification", "must be one of preferred, required")
	}

	b := s.Branding
	if n := utf8.RuneCountInString(b.DisplayName); n > 100 {
		v.add("branding.display_name", "must be at most 100 characters")
	} else if strings.IndexFunc(b.DisplayName, unicode.IsControl) >= 0 {
		v.add("branding.display_name", "must not contain control characters")
	}
	if b.LogoURL != "" {
		if reason := checkHTTPSURL(b.LogoURL); reason != "" {
			v.add("branding.logo_url", reason)
		}
	}
	v.color("branding.primary_color", b.PrimaryColor)
	v.color("branding.background_color", b.BackgroundColor)

	o := s.OIDC
	v.urlList("oidc.post_logout_redirect_uris", o.PostLogoutRedirectURIs, checkRedirectURI)
	// An id_token is read once, at sign-in; a day bounds what a leaked one is worth.
	v.between("oidc.id_token_lifetime", o.IDTokenLifetimeSeconds, 60, day)
	for i, sc := range o.AllowedScopes {
		if !slices.Contains(OIDCScopes, sc) {
			v.add(fmt.Sprintf("oidc.allowed_scopes[%d]", i), "must be one of "+strings.Join(OIDCScopes, ", "))
		}
	}
	if !slices.Contains([]string{AuthMethodBasic, AuthMethodPost, AuthMethodNone}, o.TokenEndpointAuthMethod) {
		v.add("oidc.token_endpoint_auth_method", "must be one of client_secret_basic, client_secret_post, none")
	}
	switch {
	case len(o.Locales) == 0:
		v.add("oidc.locales", "must name at least one language")
	case len(o.Locales) > maxLocales:
		v.add("oidc.locales", fmt.Sprintf("must hold at most %d entries", maxLocales))
	default:
		for i, l := range o.Locales {
			if !localeRE.MatchString(l) {
				v.add(fmt.Sprintf("oidc.locales[%d]", i), "must be a BCP 47 language tag such as en or pt-BR")
			}
		}
	}
	return v.err()
}

// OIDCScopes are the scopes Latchkey's OpenID Provider can grant: OpenID Connect's own and
// Latchkey's organization and roles.
var OIDCScopes = []string{"openid", "profile", "email", "phone", "offline_access", "organization", "roles"}

// maxLocales bounds the hosted page's language list.
const maxLocales = 20

// localeRE is a BCP 47 tag's common shape: a language, then subtags (script, region, variant).
var localeRE = regexp.MustCompile(`^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$`)

type validator struct{ errs ValidationError }

func (v *validator) add(field, reason string) {
	v.errs = append(v.errs, FieldError{Field: field, Reason: reason})
}

// between checks lo <= n <= hi and reports whether it holds.
func (v *validator) between(field string, n, lo, hi int) bool {
	if n < lo || n > hi {
		v.add(field, fmt.Sprintf("must be between %d and %d", lo, hi))
		return false
	}
	return true
}

func (v *validator) urlList(field string, list []string, check func(string) string) {
	if len(list) > maxListLen {
		v.add(field, fmt.Sprintf("must hold at most %d entries", maxListLen))
		return
	}
	for i, s := range list {
		if reason := check(s); reason != "" {
			v.add(fmt.Sprintf("%s[%d]", field, i), reason)
		}
	}
}

var colorRE = regexp.MustCompile(`^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)

// cidrs checks a list of IP addresses or CIDR prefixes.
func (v *validator) cidrs(field string, list []string) {
	if len(list) > maxListLen {
		v.add(field, fmt.Sprintf("must have at most %d entries", maxListLen))
		return
	}
	for i, c := range list {
		if _, err := ParseCIDR(c); err != nil {
			v.add(fmt.Sprintf("%s[%d]", field, i), "must be an IP address or a CIDR prefix such as 192.0.2.0/24")
		}
	}
}

// ParseCIDR reads an IP address (a prefix of that one address) or a CIDR prefix.
func ParseCIDR(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR prefix", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

func (v *validator) color(field, c string) {
	if c != "" && !colorRE.MatchString(c) {
		v.add(field, "must be a hex color such as #fff or #4f46e5")
	}
}

func (v *validator) err() error {
	if len(v.errs) == 0 {
		return nil
	}
	return v.errs
}

// isLoopback reports whether host (without port or brackets) is this machine, the only place
// where plain http is acceptable: nothing crosses a network.
func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// parseAbsolute parses an absolute URL with a host and no credentials, or returns why not.
func parseAbsolute(s string) (*url.URL, string) {
	if len(s) > maxURLLen {
		return nil, fmt.Sprintf("must be at most %d characters", maxURLLen)
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Opaque != "" || u.Hostname() == "" {
		return nil, "must be an absolute URL such as https://app.example.com"
	}
	if u.User != nil {
		return nil, "must not contain a user name or password"
	}
	return u, ""
}

// checkRPID accepts a host name: a WebAuthn RP id is a domain, never an IP address, a URL or a
// host with a port.
func checkRPID(s string) string {
	const reason = "must be a domain such as example.com (no scheme, port or path)"
	if len(s) > 253 || net.ParseIP(s) != nil {
		return reason
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return reason
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return reason
			}
		}
	}
	return ""
}

// checkOrigin accepts scheme://host[:port] with https, or http on loopback.
func checkOrigin(s string) string {
	u, reason := parseAbsolute(s)
	if reason != "" {
		return "must be an origin such as https://app.example.com"
	}
	if u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#") {
		return "must be an origin (scheme://host[:port]) without a path, query or fragment"
	}
	return checkScheme(u)
}

// checkRedirectURI accepts an absolute https URL without a fragment (RFC 6749 §3.1.2), or http
// on loopback for local development and native apps (RFC 8252 §7.3).
func checkRedirectURI(s string) string {
	u, reason := parseAbsolute(s)
	if reason != "" {
		return reason
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return "must not contain a fragment"
	}
	return checkScheme(u)
}

func checkScheme(u *url.URL) string {
	switch {
	case u.Scheme == "https":
		return ""
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return ""
	case u.Scheme == "http":
		return "must use https (http is allowed only for localhost, 127.0.0.1 and [::1])"
	}
	return "must use https (or http on localhost)"
}

func checkHTTPSURL(s string) string {
	u, reason := parseAbsolute(s)
	if reason != "" {
		return reason
	}
	if u.Scheme != "https" {
		return "must be an https URL"
	}
	return ""
}
