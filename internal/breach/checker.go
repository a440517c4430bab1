package breach

import (
	"context"
	"errors"
)

// Checker tells whether a password is breached, from the offline list first and then, when
// configured, from Pwned Passwords.
type Checker struct {
	offline *Offline
	hibp    *HIBP
}

// NewChecker returns a Checker of offline (the embedded list when nil) and, unless hibp is nil,
// of Pwned Passwords.
func NewChecker(offline *Offline, hibp *HIBP) *Checker {
	if offline == nil {
		offline = NewOffline()
	}
	return &Checker{offline: offline, hibp: hibp}
}

// Breached reports whether the password is known to be breached or common. The offline list is
// asked first: it is free, and a hit there saves the network round trip.
//
// A source that cannot answer (Pwned Passwords down, slow or unreachable) does not block the
// user: Breached then returns false with the error, and the caller should log the error and
// accept the password. The check is a defence in depth next to rate limits and MFA, and making
// sign-up and password changes depend on a third party's availability would turn its outage
// into ours. true always comes with a nil error.
func (c *Checker) Breached(ctx context.Context, password string) (bool, error) {
	hit, offlineErr := c.offline.Breached(ctx, password)
	if hit {
		return true, nil
	}
	if c.hibp == nil {
		return false, offlineErr
	}
	hit, hibpErr := c.hibp.Breached(ctx, password)
	if hit {
		return true, nil
	}
	return false, errors.Join(offlineErr, hibpErr)
}
