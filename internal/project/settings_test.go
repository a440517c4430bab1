package project

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestDefaultSettingsAreValid(t *testing.T) {
	if err := DefaultSettings().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
}

func TestDecodeFillsMissingFieldsWithDefaults(t *testing.T) {
	// A document from an older version that knew only some settings, plus one from a newer
	// version that this one does not know.
	doc := `{"allowed_origins":["https://a.example"],"tokens":{"access_token_ttl_seconds":600},"future_setting":{"x":1}}`
	s, err := DecodeSettings([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultSettings()
	want.AllowedOrigins = []string{"https://a.example"}
	want.Tokens.AccessTokenTTLSeconds = 600
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("decoded %+v\nwant %+v", s, want)
	}

	empty, err := DecodeSettings(nil)
	if err != nil || !reflect.DeepEqual(empty, DefaultSettings()) {
		t.Fatalf("empty document: %+v, %v", empty, err)
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	s := DefaultSettings()
	s.MFA.Policy = MFARequired
	s.Branding.DisplayName = "Acme"
	doc, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeSettings(doc)
	if err != nil || !reflect.DeepEqual(back, s) {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	if strings.Contains(string(doc), "null") {
		t.Errorf("encoded lists must be [], not null: %s", doc)
	}
}

func TestApplyMergesAndResets(t *testing.T) {
	base := DefaultSettings()
	base.Codes.Length = 8
	base.AllowedOrigins = []string{"https://old.example"}

	got, err := base.Apply([]byte(`{
		"tokens": {"access_token_ttl_seconds": 300},
		"allowed_origins": ["HTTPS://App.Example.com/", "https://app.example.com"],
		"codes": null,
		"branding": {"display_name": "  Acme  "}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	if got.Tokens.AccessTokenTTLSeconds != 300 || got.Tokens.SigningAlgorithm != AlgRS256 {
		t.Errorf("tokens not merged key by key: %+v", got.Tokens)
	}
	if !reflect.DeepEqual(got.AllowedOrigins, []string{"https://app.example.com"}) {
		t.Errorf("origins not replaced and normalised: %q", got.AllowedOrigins)
	}
	if got.Codes != DefaultSettings().Codes {
		t.Errorf("null did not reset codes to the defaults: %+v", got.Codes)
	}
	if got.Branding.DisplayName != "Acme" || got.Branding.PrimaryColor != "#4f46e5" {
		t.Errorf("branding: %+v", got.Branding)
	}
	// Apply must not change the settings it was called on.
	if base.Codes.Length != 8 || base.AllowedOrigins[0] != "https://old.example" {
		t.Errorf("Apply changed its receiver: %+v", base)
	}
}

func TestApplyRefusesUnknownKeysAndWrongTypes(t *testing.T) {
	cases := []struct {
		patch, field string
	}{
		{`{"allowed_origin": []}`, "allowed_origin"},
		{`{"tokens": {"acess_token_ttl_seconds": 60}}`, "tokens.acess_token_ttl_seconds"},
		{`{"tokens": {"access_token_ttl_seconds": "60"}}`, "tokens.access_token_ttl_seconds"},
		{`{"tokens": {"access_token_ttl_seconds": 60.5}}`, "tokens.access_token_ttl_seconds"},
		{`{"allow_signup": "yes"}`, "allow_signup"},
		{`{"emails": {"allow_lookalike_addresses": "yes"}}`, "emails.allow_lookalike_addresses"},
		{`{"emails": {"allow_lookalikes": true}}`, "emails.allow_lookalikes"},
		{`{"tokens": 5}`, "tokens"},
		{`[1,2]`, "settings"},
		{`{"codes": `, "settings"},
	}
	for _, c := range cases {
		_, err := DefaultSettings().Apply([]byte(c.patch))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("Apply(%s) = %v, want a FieldError for %q", c.patch, err, c.field)
		}
	}
}

func TestValidateReportsEveryBadField(t *testing.T) {
	s := DefaultSettings()
	s.AllowedOrigins = []string{
		"https://ok.example", "http://localhost:3000", "http://127.0.0.1:5173",
		"http://evil.example", "https://app.example/path", "ftp://x.example", "not a url",
	}
	s.RedirectURIs = []string{
		"https://app.example/cb", "http://localhost:8080/cb", "http://[::1]/cb",
		"https://app.example/cb#frag", "http://app.example/cb", "/relative",
	}
	s.LoginMethods = LoginMethods{}
	s.Tokens.SigningAlgorithm = "HS256"
	s.Tokens.AccessTokenTTLSeconds = 30
	s.Tokens.RefreshTokenTTLSeconds = 400 * day
	s.Tokens.SessionIdleTimeoutSeconds = 10 * day
	s.Tokens.SessionAbsoluteTimeoutSeconds = 9 * day
	s.Codes = CodeSettings{Length: 9, TTLSeconds: 30, MaxAttempts: 0}
	s.MagicLink.TTLSeconds = 7200
	s.MFA = MFASettings{Policy: "always", Factors: []string{"otp", "carrier-pigeon"}}
	s.Branding = Branding{DisplayName: strings.Repeat("x", 101), LogoURL: "http://logo.example/l.png",
		PrimaryColor: "red", BackgroundColor: "#12345"}

	err := s.Validate()
	var ve ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Validate = %v, want a ValidationError", err)
	}
	got := map[string]string{}
	for _, fe := range ve {
		got[fe.Field] = fe.Reason
	}
	want := []string{
		"allowed_origins[3]", "allowed_origins[4]", "allowed_origins[5]", "allowed_origins[6]",
		"redirect_uris[3]", "redirect_uris[4]", "redirect_uris[5]",
		"login_methods", "tokens.signing_algorithm", "tokens.access_token_ttl_seconds",
		"tokens.refresh_token_ttl_seconds", "tokens.session_absolute_timeout_seconds",
		"codes.length", "codes.ttl_seconds", "codes.max_attempts", "magic_link.ttl_seconds",
		"mfa.policy", "mfa.factors[1]", "branding.display_name", "branding.logo_url",
		"branding.primary_color", "branding.background_color",
	}
	for _, f := range want {
		if _, ok := got[f]; !ok {
			t.Errorf("no error for %s", f)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d errors, want %d: %v", len(got), len(want), err)
	}
	if ve[0].Field != "allowed_origins[3]" {
		t.Errorf("first error is %s, want the first bad field in document order", ve[0].Field)
	}
	if r := got["tokens.access_token_ttl_seconds"]; r != "must be between 60 and 86400" {
		t.Errorf("access ttl reason = %q", r)
	}
}

func TestValidateOIDCSettings(t *testing.T) {
	s := DefaultSettings()
	s.OIDC = OIDCSettings{PostLogoutRedirectURIs: []string{"https://app.example/bye", "http://app.example/bye", "https://app.example/#x"},
		IDTokenLifetimeSeconds: 30, AllowedScopes: []string{"openid", "address"}, TokenEndpointAuthMethod: "private_key_jwt",
		Locales: []string{"en", "not a tag"}}
	var ve ValidationError
	if !errors.As(s.Validate(), &ve) {
		t.Fatal("invalid oidc settings were accepted")
	}
	var got []string
	for _, fe := range ve {
		got = append(got, fe.Field)
	}
	want := []string{"oidc.post_logout_redirect_uris[1]", "oidc.post_logout_redirect_uris[2]", "oidc.id_token_lifetime",
		"oidc.allowed_scopes[1]", "oidc.token_endpoint_auth_method", "oidc.locales[1]"}
	if !slices.Equal(got, want) {
		t.Fatalf("errors on %v, want %v", got, want)
	}
	s.OIDC.Locales = nil
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "oidc.locales: must name at least one language") {
		t.Fatalf("no locales: %v", err)
	}
	s = DefaultSettings()
	s.OIDC.TokenEndpointAuthMethod, s.OIDC.Locales = AuthMethodNone, []string{"pt-BR", "de"}
	if err := s.Validate(); err != nil {
		t.Fatalf("valid oidc settings refused: %v", err)
	}
}

func TestValidateCrossFieldRules(t *testing.T) {
	s := DefaultSettings()
	s.Tokens.AccessTokenTTLSeconds = 3600
	s.Tokens.RefreshTokenTTLSeconds = 600
	s.MFA = MFASettings{Policy: MFARequired, Factors: []string{}}
	err := s.Validate()
	var ve ValidationError
	if !errors.As(err, &ve) || len(ve) != 2 ||
		ve[0].Field != "tokens.refresh_token_ttl_seconds" || ve[1].Field != "mfa.factors" {
		t.Fatalf("Validate = %v", err)
	}
}

func TestSettingsJSONShape(t *testing.T) {
	b, err := json.Marshal(DefaultSettings())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"allowed_origins", "redirect_uris", "login_methods", "allow_signup",
		"tokens", "codes", "magic_link", "mfa", "passkey", "branding"} {
		if _, ok := m[k]; !ok {
			t.Errorf("settings document lacks %q", k)
		}
	}
	lm := m["login_methods"].(map[string]any)
	want := map[string]any{"magic_link": true, "email_otp": true, "phone_otp": false, "passkey": true, "password": false}
	if !reflect.DeepEqual(lm, want) {
		t.Errorf("login_methods = %v, want %v", lm, want)
	}
	pk := m["passkey"].(map[string]any)
	wantPK := map[string]any{"rp_id": "", "rp_name": "", "user_verification": "preferred"}
	if !reflect.DeepEqual(pk, wantPK) {
		t.Errorf("passkey = %v, want %v", pk, wantPK)
	}
}

func TestValidatePasskeySettings(t *testing.T) {
	cases := []struct {
		name      string
		passkey   PasskeySettings
		badFields []string
	}{
		{"defaults", DefaultSettings().Passkey, nil},
		{"a domain", PasskeySettings{RPID: "example.com", UserVerification: UserVerificationRequired}, nil},
		{"a subdomain", PasskeySettings{RPID: "auth.acme.co.uk", UserVerification: UserVerificationPreferred}, nil},
		{"localhost", PasskeySettings{RPID: "localhost", UserVerification: UserVerificationPreferred}, nil},
		{"a punycode label", PasskeySettings{RPID: "xn--bcher-kva.example", UserVerification: UserVerificationPreferred}, nil},
		{"labels of 63", PasskeySettings{RPID: strings.Repeat("a", 63) + ".example", UserVerification: UserVerificationPreferred}, nil},
		{"a URL", PasskeySettings{RPID: "https://x.com", UserVerification: UserVerificationPreferred}, []string{"passkey.rp_id"}},
		{"a port", PasskeySettings{RPID: "x.com:443", UserVerification: UserVerificationPreferred}, []string{"passkey.rp_id"}},
		{"a path", PasskeySettings{RPID: "x.com/login", UserVerification: UserVerificationPreferred}, []string{"passkey.rp_id"}},
		{"an IPv4 address", PasskeySettings{RPID: "127.0.0.1", UserVerification: UserVerificationPreferred}, []string{"passkey.rp_id"}},
		{"an IPv6 address", PasskeySettings{RPID: "::1", UserVerification: UserVerificationPreferred}, []string{"passkey.rp_id"}},
		{"a bracketed IPv6 address", PasskeySettings{RPID: "[::1]", UserVerification: UserVerificationPreferred}, []string{"passkey.rp_id"}},
		{"an empty label", PasskeySettings{RPID: "x..com", UserVerification: UserVerificationPreferred}, []string{"passkey.rp_id"}},
		{"a leading dot", PasskeySettings{RPID: ".x.com", UserVerification: UserVerificationPreferred}, []string{"passkey.rp_id"}},
		{"a trailing dot", PasskeySettings{RPID: "x.com.", UserVerification: UserVerificationPreferred}, []string{"passkey.rp_id"}},
		{"a hyphen at a label's edge", PasskeySettings{RPID: "-x.com", UserVerification: UserVerificationPreferred}, []string{"passkey.rp_id"}},
		{"an underscore", PasskeySettings{RPID: "my_app.com", UserVerification: UserVerificationPreferred}, []string{"passkey.rp_id"}},
		{"a space", PasskeySettings{RPID: "my app.com", UserVerification: UserVerificationPreferred}, []string{"passkey.rp_id"}},
		{"upper case (Apply lower-cases it first)", PasskeySettings{RPID: "X.com", UserVerification: UserVerificationPreferred}, []string{"passkey.rp_id"}},
		{"a label over 63", PasskeySettings{RPID: strings.Repeat("a", 64) + ".example", UserVerification: UserVerificationPreferred}, []string{"passkey.rp_id"}},
		{"over 253 characters", PasskeySettings{RPID: strings.Repeat(strings.Repeat("a", 60)+".", 5) + "example", UserVerification: UserVerificationPreferred}, []string{"passkey.rp_id"}},
		{"a name of 100", PasskeySettings{RPName: strings.Repeat("é", 100), UserVerification: UserVerificationPreferred}, nil},
		{"a name over 100", PasskeySettings{RPName: strings.Repeat("x", 101), UserVerification: UserVerificationPreferred}, []string{"passkey.rp_name"}},
		{"a control character in the name", PasskeySettings{RPName: "Acme\nBank", UserVerification: UserVerificationPreferred}, []string{"passkey.rp_name"}},
		{"no user verification", PasskeySettings{}, []string{"passkey.user_verification"}},
		{"discouraged user verification", PasskeySettings{UserVerification: "discouraged"}, []string{"passkey.user_verification"}},
		{"everything wrong", PasskeySettings{RPID: "https://x.com", RPName: strings.Repeat("x", 101), UserVerification: "always"},
			[]string{"passkey.rp_id", "passkey.rp_name", "passkey.user_verification"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := DefaultSettings()
			s.Passkey = c.passkey
			err := s.Validate()
			if c.badFields == nil {
				if err != nil {
					t.Fatalf("Validate(%+v) = %v, want nil", c.passkey, err)
				}
				return
			}
			var ve ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate(%+v) = %v, want a ValidationError", c.passkey, err)
			}
			var got []string
			for _, fe := range ve {
				got = append(got, fe.Field)
			}
			if !reflect.DeepEqual(got, c.badFields) {
				t.Errorf("Validate(%+v) refused %q, want %q", c.passkey, got, c.badFields)
			}
		})
	}
	// The RP id's reason says what is wanted.
	s := DefaultSettings()
	s.Passkey.RPID = "x.com:443"
	var ve ValidationError
	if err := s.Validate(); !errors.As(err, &ve) || !strings.Contains(ve[0].Reason, "domain") {
		t.Errorf("Validate = %v, want a reason that asks for a domain", err)
	}
}

func TestApplyPasskeySettings(t *testing.T) {
	got, err := DefaultSettings().Apply([]byte(`{"passkey":{"rp_id":"  Auth.Example.COM ","rp_name":" Acme ","user_verification":"REQUIRED"}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := PasskeySettings{RPID: "auth.example.com", RPName: "Acme", UserVerification: UserVerificationRequired}
	if got.Passkey != want {
		t.Errorf("passkey after Apply = %+v, want the normalised %+v", got.Passkey, want)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("normalised passkey settings invalid: %v", err)
	}

	// Keys merge one by one, and null resets to the default.
	kept, err := got.Apply([]byte(`{"passkey":{"rp_name":"Acme Bank"}}`))
	if err != nil || kept.Passkey.RPID != "auth.example.com" || kept.Passkey.RPName != "Acme Bank" {
		t.Errorf("merge into passkey = %+v, %v", kept.Passkey, err)
	}
	reset, err := kept.Apply([]byte(`{"passkey":null}`))
	if err != nil || reset.Passkey != DefaultSettings().Passkey {
		t.Errorf("null passkey = %+v, %v; want the defaults", reset.Passkey, err)
	}

	for patch, field := range map[string]string{
		`{"passkey":{"rpid":"x.com"}}`:           "passkey.rpid",
		`{"passkey":{"user_verification":true}}`: "passkey.user_verification",
		`{"passkey":"x.com"}`:                    "passkey",
	} {
		_, err := DefaultSettings().Apply([]byte(patch))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("Apply(%s) = %v, want a FieldError for %q", patch, err, field)
		}
	}

	// A stored document from before passkey settings existed decodes with their defaults.
	old, err := DecodeSettings([]byte(`{"allowed_origins":["https://a.example"]}`))
	if err != nil || old.Passkey != DefaultSettings().Passkey || old.Passkey.UserVerification != UserVerificationPreferred {
		t.Errorf("old document: passkey = %+v, %v", old.Passkey, err)
	}
}

func TestEffectiveRPID(t *testing.T) {
	const fallback = "auth.latchkey.example"
	cases := []struct {
		name    string
		rpID    string
		origins []string
		want    string
	}{
		{"explicit setting wins over the origins", "acme.example", []string{"https://app.acme.example"}, "acme.example"},
		{"the first allowed origin's host", "", []string{"https://app.acme.example:8443", "https://other.example"}, "app.acme.example"},
		{"a loopback origin", "", []string{"http://localhost:3000"}, "localhost"},
		{"no origin: the server's host", "", []string{}, fallback},
		{"no origin list at all", "", nil, fallback},
		{"an origin without a host", "", []string{"not a url"}, fallback},
		{"an IP origin is skipped", "", []string{"http://127.0.0.1:5173", "https://app.acme.example"}, "app.acme.example"},
		{"only IP origins: the server's host", "", []string{"http://[::1]:5173"}, fallback},
	}
	for _, c := range cases {
		s := DefaultSettings()
		s.Passkey.RPID = c.rpID
		s.AllowedOrigins = c.origins
		if got := s.EffectiveRPID(fallback); got != c.want {
			t.Errorf("%s: EffectiveRPID = %q, want %q", c.name, got, c.want)
		}
	}
	// An IP address is never an RP id: a server reached by IP offers localhost.
	if got := DefaultSettings().EffectiveRPID("127.0.0.1"); got != "localhost" {
		t.Errorf("EffectiveRPID with an IP fallback = %q, want localhost", got)
	}
}

// TestLookalikeAddressesAreRefusedByDefault: new accounts may not have look-alike addresses
// unless the project says so.
func TestLookalikeAddressesAreRefusedByDefault(t *testing.T) {
	if DefaultSettings().Emails.AllowLookalikeAddresses {
		t.Fatal("emails.allow_lookalike_addresses is on by default")
	}
	s, err := DefaultSettings().Apply([]byte(`{"emails":{"allow_lookalike_addresses":true}}`))
	if err != nil || !s.Emails.AllowLookalikeAddresses || s.Validate() != nil {
		t.Fatalf("Apply = %+v, %v", s.Emails, err)
	}
}

// The authorization-request budget has a generous default, also for documents written before
// it existed, and is bounded like the other per-IP budgets.
func TestProtectAuthorizeRequestsPerHour(t *testing.T) {
	old, err := DecodeSettings([]byte(`{"protect":{"ip_failures_per_hour":50}}`))
	if err != nil || old.Protect.AuthorizeRequestsPerHour != 300 {
		t.Fatalf("an older document: %d, %v; want the default 300", old.Protect.AuthorizeRequestsPerHour, err)
	}
	for n, ok := range map[int]bool{9: false, 10: true, 300: true, 1_000_000: true, 1_000_001: false, -1: false} {
		s := DefaultSettings()
		s.Protect.AuthorizeRequestsPerHour = n
		err := s.Validate()
		var ve ValidationError
		switch {
		case ok && err != nil:
			t.Errorf("%d: %v, want valid", n, err)
		case !ok && (!errors.As(err, &ve) || len(ve) != 1 || ve[0].Field != "protect.authorize_requests_per_hour"):
			t.Errorf("%d: %v, want protect.authorize_requests_per_hour refused", n, err)
		}
	}
}
