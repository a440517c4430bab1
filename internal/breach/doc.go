// Package breach tells whether a password is known to attackers: from a list of common
// passwords shipped in the binary and, when configured, from Have I Been Pwned's Pwned Passwords.
package breach
