// Package oidcprovider makes Latchkey an OpenID Provider (issue 15) over github.com/zitadel/oidc/v3's
// op package: op does the protocol checks and the id_token, while authorization requests, codes
// and browser sessions live in the store (store.OIDCRequests) and every access and refresh token
// is minted by internal/token, so that there is one session model and one rotation path. It
// closes op's two known traps itself: PKCE plain is refused at authorization, and a code is
// consumed atomically in the transaction that starts its session (docs/oidc-provider-plan.md).
package oidcprovider
