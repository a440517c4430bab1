// Package mfa enrolls and checks users' second factors; so far TOTP authenticators (RFC 6238)
// and recovery (backup) codes, whose codes are each accepted once.
package mfa
