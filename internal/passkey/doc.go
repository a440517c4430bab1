// Package passkey runs WebAuthn (passkey) registration and login ceremonies with go-webauthn,
// adds the relying-party policy that library leaves to its caller (sign count rollback, stable
// backup eligibility, single-use ceremonies on the service's clock, no account enumeration), and
// manages a user's credentials.
package passkey
