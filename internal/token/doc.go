// Package token issues and checks Latchkey's tokens: signing keys and their JWKS, access
// tokens (RFC 9068 at+jwt) and the sessions and refresh tokens behind them.
//
// The JWT core (keys.go, jwt.go) knows nothing of the store or of HTTP: it turns a SigningKey
// and AccessClaims into a compact JWS and back, and everything stateful (which keys a project
// publishes, when they rotate) is given to it through small interfaces such as KeySet.
package token
