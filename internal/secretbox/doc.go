// Package secretbox encrypts secrets at rest with envelope encryption (AES-256-GCM) under a ring
// of master keys, so that master keys can be rotated without re-encrypting any payload.
//
// Each Seal makes a fresh data key, encrypts the secret with it and wraps the data key with the
// current master key; the ciphertext names that master key. Rotation puts a new master key first
// in the ring, rewraps every stored ciphertext (Rewrap), and then drops the old key.
//
// Wraps use random 96-bit nonces, so one master key should wrap well under 2^32 data keys (one per
// Seal) before it is rotated.
package secretbox
