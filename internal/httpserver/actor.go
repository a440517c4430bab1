package httpserver

import (
	"net/http"

	"github.com/latchkey-dev/latchkey/internal/audit"
)

// Actor is who made a request to a Secret route, for the audit events of the changes it
// makes: the machine token's client when it carries one, else the project secret.
func Actor(r *http.Request) audit.Actor {
	if c, ok := CallerFrom(r.Context()); ok {
		return c.Actor(Meta(r))
	}
	return audit.SecretActor(ProjectFrom(r.Context()).ClientID, Meta(r))
}
