package project

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

const (
	// ClientIDPrefix starts every client id.
	ClientIDPrefix = "cli_"
	// SecretPrefix starts every client secret, so that scanners and the router can tell a
	// secret from a JWT.
	SecretPrefix = "sk_"
	// secretBytes of randomness make a secret: 256 bits, far beyond guessing, which is why a
	// fast hash (SHA-256) is the right way to store it and a password KDF would only burn CPU.
	secretBytes = 32
	// hintLen characters of a secret's end are kept in clear to tell secrets apart.
	hintLen = 4
	// maxSecretLen bounds what is hashed: a presented "secret" longer than any we issue is
	// refused before any work.
	maxSecretLen = 128
)

// newClientID returns "cli_" and 24 hex characters (96 random bits).
func newClientID(rand io.Reader) (string, error) {
	var b [12]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return "", fmt.Errorf("read random bytes for a client id: %w", err)
	}
	return ClientIDPrefix + hex.EncodeToString(b[:]), nil
}

// newSecret returns "sk_" and the 43-character base64url encoding of 32 random bytes.
func newSecret(rand io.Reader) (string, error) {
	var b [secretBytes]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return "", fmt.Errorf("read random bytes for a client secret: %w", err)
	}
	return SecretPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// hashSecret is the lookup key a secret is stored under.
func hashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

func secretHint(secret string) string {
	if len(secret) <= hintLen {
		return ""
	}
	return secret[len(secret)-hintLen:]
}

// wellFormedClientID reports whether s could be a client id, so that garbage is refused without
// a database round trip.
func wellFormedClientID(s string) bool {
	hexPart, ok := strings.CutPrefix(s, ClientIDPrefix)
	if !ok || len(hexPart) != 24 {
		return false
	}
	_, err := hex.DecodeString(hexPart)
	return err == nil && strings.ToLower(hexPart) == hexPart
}

func wellFormedSecret(s string) bool {
	return strings.HasPrefix(s, SecretPrefix) && len(s) <= maxSecretLen
}
