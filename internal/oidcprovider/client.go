package oidcprovider

import (
	"context"
	"net/url"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// Client is a project as op sees an OpenID Connect client: its settings' redirect URIs
// (matched exactly), its token endpoint auth method, and the scopes it may be granted.
type Client struct {
	Project  store.Project
	Settings project.Settings
	issuer   string
}

var _ op.Client = (*Client)(nil)

// GetID is the client id.
func (c *Client) GetID() string { return c.Project.ClientID }

// RedirectURIs are matched exactly; Client implements no redirect globs on purpose.
func (c *Client) RedirectURIs() []string { return c.Settings.RedirectURIs }

// PostLogoutRedirectURIs are matched exactly by RP-initiated logout.
func (c *Client) PostLogoutRedirectURIs() []string { return c.Settings.OIDC.PostLogoutRedirectURIs }

// ApplicationType is web for every project: op's native type would accept any loopback port.
func (c *Client) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }

// AuthMethod is the project's oidc.token_endpoint_auth_method.
func (c *Client) AuthMethod() oidc.AuthMethod {
	switch c.Settings.OIDC.TokenEndpointAuthMethod {
	case project.AuthMethodNone:
		return oidc.AuthMethodNone
	case project.AuthMethodPost:
		return oidc.AuthMethodPost
	}
	return oidc.AuthMethodBasic
}

// ResponseTypes is code only.
func (c *Client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

// GrantTypes are those the token endpoint serves for users.
func (c *Client) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}

// LoginURL is the resume route, which decides between single sign-on and the hosted page.
func (c *Client) LoginURL(id string) string {
	return c.issuer + ResumePath + "?id=" + url.QueryEscape(id)
}

// AccessTokenType is JWT; unused, since internal/token mints every access token.
func (c *Client) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }

// IDTokenLifetime is the project's oidc.id_token_lifetime.
func (c *Client) IDTokenLifetime() time.Duration { return c.Settings.OIDC.IDTokenLifetime() }

// DevMode is off: op's dev mode relaxes redirect URI checks.
func (c *Client) DevMode() bool { return false }

// RestrictAdditionalIdTokenScopes keeps the granted scopes.
func (c *Client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// RestrictAdditionalAccessTokenScopes keeps the granted scopes.
func (c *Client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// IsScopeAllowed lets op keep Latchkey's own scopes when the project allows them; grantScopes
// then drops what the project's oidc.allowed_scopes does not list.
func (c *Client) IsScopeAllowed(scope string) bool {
	return (scope == ScopeOrganization || scope == ScopeRoles) && slices.Contains(c.Settings.OIDC.AllowedScopes, scope)
}

// IDTokenUserinfoClaimsAssertion puts the userinfo claims (email, email_verified, ...) in the
// id_token too, where libraries such as Auth.js read them.
func (c *Client) IDTokenUserinfoClaimsAssertion() bool { return true }

// ClockSkew is none: tokens are valid from when they are issued.
func (c *Client) ClockSkew() time.Duration { return 0 }

// FirstParty reports whether the project is one of the operator's own apps (no consent).
func (c *Client) FirstParty() bool { return c.Settings.OIDC.FirstParty }

// grantScopes is what the client gets of the scopes it asked for: only supported scopes the
// project allows, each once, plus offline_access for a first-party project whose settings
// grant it by default.
func (c *Client) grantScopes(asked []string) []string {
	allowed := c.Settings.OIDC.AllowedScopes
	out := make([]string, 0, len(asked)+1)
	for _, s := range asked {
		if slices.Contains(SupportedScopes, s) && slices.Contains(allowed, s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	o := c.Settings.OIDC
	if o.FirstParty && o.OfflineAccessByDefault && slices.Contains(allowed, oidc.ScopeOfflineAccess) &&
		!slices.Contains(out, oidc.ScopeOfflineAccess) {
		out = append(out, oidc.ScopeOfflineAccess)
	}
	return out
}

// clientKey holds the Client a request already read: op asks for it several times per
// request, and each read is a database query and a settings decode.
type clientKey struct{}

func withClient(ctx context.Context, c *Client) context.Context {
	return context.WithValue(ctx, clientKey{}, c)
}

// client returns the project with clientID as a Client.
func (s *Storage) client(ctx context.Context, clientID string) (*Client, error) {
	if c, ok := ctx.Value(clientKey{}).(*Client); ok && c.GetID() == clientID {
		return c, nil
	}
	p, err := s.projects.ProjectByClientID(ctx, clientID)
	if err != nil {
		return nil, err
	}
	return s.clientOf(p)
}

func (s *Storage) clientOf(p store.Project) (*Client, error) {
	settings, err := s.projects.Settings(p)
	if err != nil {
		return nil, err
	}
	return &Client{Project: p, Settings: settings, issuer: s.p.issuer}, nil
}
