package httpserver

import (
	"net/http"

	"github.com/latchkey-dev/latchkey/internal/token"
)

// Actor is who made a request to a Secret route, for the audit events of the changes it
// makes: the machine token's client when it carries one, else the project secret.
func Actor(r *http.Request) token.Actor {
	if c, ok := CallerFrom(r.Context()); ok {
		return c.Actor(Meta(r))
	}
	return token.SecretActor(ProjectFrom(r.Context()).ClientID, Meta(r))
}
