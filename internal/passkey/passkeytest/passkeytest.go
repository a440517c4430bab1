// Package passkeytest answers WebAuthn ceremonies with software authenticators
// (descope/virtualwebauthn), for the tests of the passkey service and of the server.
package passkeytest

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/descope/virtualwebauthn"
)

// NewAuthenticator returns a software authenticator for the user handle of a registration's
// options (their JSON, as the server sends them), and a new credential in it; mod, when not
// nil, changes the authenticator's options first. Options without a user handle are a bug in
// the test, and panic.
func NewAuthenticator(options []byte, mod func(*virtualwebauthn.AuthenticatorOptions)) (virtualwebauthn.Authenticator, virtualwebauthn.Credential) {
	var opts struct {
		PublicKey struct {
			User struct {
				ID string `json:"id"`
			} `json:"user"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(options, &opts); err != nil {
		panic(fmt.Sprintf("creation options: %v", err))
	}
	handle, err := base64.RawURLEncoding.DecodeString(opts.PublicKey.User.ID)
	if err != nil {
		panic(fmt.Sprintf("user handle %q: %v", opts.PublicKey.User.ID, err))
	}
	o := virtualwebauthn.AuthenticatorOptions{UserHandle: handle, BackupEligible: true, BackupState: true}
	if mod != nil {
		mod(&o)
	}
	auth := virtualwebauthn.NewAuthenticatorWithOptions(o)
	cred := NewCredential()
	auth.AddCredential(cred)
	return auth, cred
}

// NewCredential returns a P-256 credential whose COSE key is well-formed. virtualwebauthn
// writes the curve point's coordinates without their leading zero bytes, so about one key in
// 128 has a short x or y, which RFC 9053 §7.1.1 forbids and go-webauthn rightly refuses; such
// keys are drawn again rather than letting the tests fail at random.
func NewCredential() virtualwebauthn.Credential {
	for {
		cred := virtualwebauthn.NewCredential(virtualwebauthn.KeyTypeEC2)
		k, err := x509.ParsePKCS8PrivateKey(cred.Key.Data)
		if err != nil {
			panic(err)
		}
		// Uncompressed SEC 1: 0x04, then X and Y as 32 bytes each; a zero first byte is the
		// leading zero the library drops.
		pub, err := k.(*ecdsa.PrivateKey).PublicKey.Bytes()
		if err != nil {
			panic(err)
		}
		if pub[1] != 0 && pub[33] != 0 {
			return cred
		}
	}
}

// Attest answers creation options (their JSON) with cred from auth as rp sees it.
func Attest(t testing.TB, rp virtualwebauthn.RelyingParty, auth virtualwebauthn.Authenticator, cred virtualwebauthn.Credential, options []byte) string {
	t.Helper()
	ao, err := virtualwebauthn.ParseAttestationOptions(string(options))
	if err != nil {
		t.Fatalf("parse creation options: %v\n%s", err, options)
	}
	// Browsers report the transports a platform passkey can use; the library leaves them out.
	var a map[string]any
	if err := json.Unmarshal([]byte(virtualwebauthn.CreateAttestationResponse(rp, auth, cred, *ao)), &a); err != nil {
		t.Fatal(err)
	}
	a["response"].(map[string]any)["transports"] = []string{"hybrid", "internal"}
	out, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// Assert answers request options (their JSON) with cred.
func Assert(t testing.TB, rp virtualwebauthn.RelyingParty, auth virtualwebauthn.Authenticator, cred virtualwebauthn.Credential, options []byte) string {
	t.Helper()
	ro, err := virtualwebauthn.ParseAssertionOptions(string(options))
	if err != nil {
		t.Fatalf("parse request options: %v\n%s", err, options)
	}
	return virtualwebauthn.CreateAssertionResponse(rp, auth, cred, *ro)
}
