package token

import "github.com/latchkey-dev/latchkey/internal/audit"

// Actor is c as the actor of a management request: only machine tokens reach the
// management API.
func (c Caller) Actor(m audit.Meta) audit.Actor {
	return audit.Actor{Kind: audit.ActorClientCredentials, ID: c.Claims.ID, Meta: m}
}
