// Package password hashes, verifies and length-checks users' passwords: argon2id for new hashes,
// bcrypt accepted for users imported from elsewhere.
package password
