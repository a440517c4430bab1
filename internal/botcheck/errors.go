package botcheck

import "github.com/latchkey-dev/latchkey/internal/failure"

// The error codes of this package. A refused check is bot_check_failed (403); a CAPTCHA
// provider that cannot give a verdict is bot_check_unavailable (503), so that the caller can
// choose between refusing and letting the request through with other limits.
const (
	CodeFailed      = "bot_check_failed"
	CodeUnavailable = "bot_check_unavailable"
)

// refused returns the 403 for a check that did not pass. description is shown to the caller,
// so it must say nothing an attacker could learn from; cause goes to the log only.
func refused(description string, cause error) error {
	return &failure.Error{Kind: failure.Forbidden, Code: CodeFailed, Description: description, Err: cause}
}

// unavailable returns the 503 for a provider that gave no verdict; cause goes to the log only.
func unavailable(provider string, cause error) error {
	return &failure.Error{Kind: failure.Unavailable, Code: CodeUnavailable,
		Description: "the bot check could not be completed: try again later",
		Err:         &providerError{provider: provider, err: cause}}
}

type providerError struct {
	provider string
	err      error
}

func (e *providerError) Error() string { return e.provider + ": " + e.err.Error() }
func (e *providerError) Unwrap() error { return e.err }
