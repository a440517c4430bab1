// Package loginhttp renders login results (API.md §2), the one answer every login method and
// the refresh endpoint give.
package loginhttp
