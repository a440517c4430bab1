package oidcprovider

import (
	"context"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Discovery is the OpenID Provider Configuration document (OpenID Connect Discovery 1.0 §3),
// also served as RFC 8414's authorization server metadata. request_parameter_supported is
// written out as false, rather than left out, so that no client guesses.
type Discovery struct {
	oidc.DiscoveryConfiguration
	RequestParameterSupported bool `json:"request_parameter_supported"`
}

// claimsSupported are the claims an id_token or userinfo answer may hold.
var claimsSupported = []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "amr", "azp", "at_hash", "c_hash",
	"sid", "email", "email_verified", "name", "given_name", "family_name", "updated_at", "phone_number",
	"phone_number_verified", "org_id", "roles", "permissions"}

// Discovery builds the document from what Latchkey allows, not from what op's storage could
// do (op would advertise implicit and hybrid flows, plain PKCE and the JWT bearer grant). The
// issuer and every endpoint derive from the static issuer: a forged Host or X-Forwarded-Host
// changes nothing here.
func (p *Provider) Discovery(ctx context.Context) Discovery {
	d := op.CreateDiscoveryConfig(p.WithIssuer(ctx), p.Provider, p.storage)
	d.Issuer = p.issuer
	d.AuthorizationEndpoint = p.issuer + AuthorizePath
	d.TokenEndpoint = p.issuer + TokenPath
	d.UserinfoEndpoint = p.issuer + UserinfoPath
	d.IntrospectionEndpoint = p.issuer + IntrospectionPath
	d.RevocationEndpoint = p.issuer + RevocationPath
	d.EndSessionEndpoint = p.issuer + EndSessionPath
	d.JwksURI = p.issuer + JWKSPath
	d.DeviceAuthorizationEndpoint, d.CheckSessionIframe = "", ""
	d.ScopesSupported = SupportedScopes
	d.ResponseTypesSupported = []string{string(oidc.ResponseTypeCode)}
	d.ResponseModesSupported = []string{string(oidc.ResponseModeQuery), string(oidc.ResponseModeFormPost)}
	d.GrantTypesSupported = []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken, oidc.GrantTypeClientCredentials}
	d.SubjectTypesSupported = []string{"public"}
	d.IDTokenSigningAlgValuesSupported = []string{"RS256", "ES256", "EdDSA"}
	d.TokenEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost, oidc.AuthMethodNone}
	d.RevocationEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost, oidc.AuthMethodNone}
	d.IntrospectionEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost}
	d.TokenEndpointAuthSigningAlgValuesSupported = nil
	d.RevocationEndpointAuthSigningAlgValuesSupported = nil
	d.IntrospectionEndpointAuthSigningAlgValuesSupported = nil
	d.RequestObjectSigningAlgValuesSupported = nil
	d.CodeChallengeMethodsSupported = []oidc.CodeChallengeMethod{oidc.CodeChallengeMethodS256}
	d.ClaimsSupported = claimsSupported
	d.ClaimsParameterSupported = false
	d.RequestURIParameterSupported = false
	d.RequireRequestURIRegistration = false
	d.BackChannelLogoutSupported, d.BackChannelLogoutSessionSupported = false, false
	d.UILocalesSupported = nil
	return Discovery{DiscoveryConfiguration: *d}
}
