// Package failure defines the typed errors that domain code returns and the HTTP layer maps,
// in one place, to a status and a stable error_code.
package failure

import (
	"errors"
	"fmt"
	"time"
)

// Kind classifies a failure; each kind has one HTTP status.
type Kind int

// The kinds of failure. The zero value is Internal so that an unclassified error is never
// reported as the client's fault.
const (
	Internal        Kind = iota // 500: a bug or an unavailable dependency
	Invalid                     // 400: the request is malformed or a value is not acceptable
	Unauthenticated             // 401: no credentials, or wrong ones
	Forbidden                   // 403: valid credentials that may not do this
	NotFound                    // 404
	Conflict                    // 409: a uniqueness rule or the current state forbids it
	TooLarge                    // 413
	TooMany                     // 429
	Unavailable                 // 503
)

// Error is a failure with a stable machine-readable code and a human description that is safe
// to show to the caller. Field names the offending input, when there is one.
type Error struct {
	Kind        Kind
	Code        string
	Description string
	Field       string
	// RetryAfter, for a TooMany or Unavailable failure, says when the caller may try again
	// (the Retry-After header); zero for no advice.
	RetryAfter time.Duration
	Err        error // the cause, for logs; never shown to the caller
}

func (e *Error) Error() string {
	msg := e.Code + ": " + e.Description
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// New returns a failure of the given kind.
func New(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Description: fmt.Sprintf(format, args...)}
}

// TooManyUntil returns a TooMany failure that tells the caller to wait retryAfter.
func TooManyUntil(retryAfter time.Duration, code, format string, args ...any) *Error {
	return &Error{Kind: TooMany, Code: code, Description: fmt.Sprintf(format, args...), RetryAfter: retryAfter}
}

// InvalidField returns an Invalid failure that names the field and the reason.
func InvalidField(code, field, reason string) *Error {
	return &Error{Kind: Invalid, Code: code, Field: field, Description: field + ": " + reason}
}

// As returns the *Error in err's chain, if any.
func As(err error) (*Error, bool) {
	var fe *Error
	if errors.As(err, &fe) {
		return fe, true
	}
	return nil, false
}

// IsKind reports whether err carries a failure of the given kind.
func IsKind(err error, kind Kind) bool {
	fe, ok := As(err)
	return ok && fe.Kind == kind
}

// StorageRetryAfter is how long a client is told to wait after StorageUnavailable: long
// enough for an operator's alert to fire, short enough that a client retries soon after space
// is freed.
const StorageRetryAfter = 30 * time.Second

// StorageUnavailable is the failure of a database that cannot take a write for lack of
// resources (a full disk, PostgreSQL's insufficient_resources class): 503 storage_unavailable
// with Retry-After. Nothing of the request was stored. cause is kept for the log.
func StorageUnavailable(cause error) *Error {
	return &Error{Kind: Unavailable, Code: "storage_unavailable",
		Description: "the database cannot store anything right now; nothing was changed, try again later",
		RetryAfter:  StorageRetryAfter, Err: cause}
}
