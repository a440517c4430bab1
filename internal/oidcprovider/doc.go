// Package oidcprovider will make Latchkey an OpenID Provider over github.com/zitadel/oidc/v3's
// op package (issue 15). For now it holds only the spike that proves the plan in
// docs/oidc-provider-plan.md: an in-memory op.Storage, our own token endpoint calling op's
// exchange functions, PKCE plain refused and a code consumed by exactly one exchange. The
// spike lives in test files so that nothing here is wired or shipped yet.
package oidcprovider
