// Package tokenhttp serves the token endpoints: JWKS, refresh, client credentials, the
// session status, the user's own sessions and logout, and sessions in the management API.
package tokenhttp
