// Package login completes first-factor logins: whatever the method, it writes the login log
// and the session in one commit and returns the one login result every method answers with.
package login
