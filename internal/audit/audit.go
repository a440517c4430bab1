// Package audit names who made a change and where the request came from, as audit events,
// login logs and sessions record them: the small types every domain package shares, with no
// behaviour beyond stamping an event.
package audit

import (
	"maps"

	"github.com/latchkey-dev/latchkey/internal/store"
)

// Meta is what is known of the request that caused a change.
type Meta struct {
	IPAddress string
	UserAgent string
}

// Kinds of Actor.
const (
	// ActorSecret is a request authenticated with the project's client secret.
	ActorSecret = "secret"
	// ActorClientCredentials is a request authenticated with a machine access token (the
	// client_credentials grant).
	ActorClientCredentials = "client_credentials"
	// ActorCLI is an operator running the latchkey command on the server.
	ActorCLI = "cli"
	// ActorSystem is the server acting on its own, such as a key rotated because the project
	// changed its signing algorithm.
	ActorSystem = "system"
)

// Actor is who made an administrative change, as its audit event records it. It names the
// credential, never holds it: an Actor is safe to store and to send in a webhook.
type Actor struct {
	Kind string // ActorSecret, ActorClientCredentials, ActorCLI or ActorSystem
	// ID tells actors of one kind apart: the client id for ActorSecret (the router does not
	// say which of a project's secrets was used), the access token's jti for
	// ActorClientCredentials, the operator's OS user name for ActorCLI; "" when unknown.
	ID string
	// Meta is where the request came from; zero outside HTTP.
	Meta
}

// SecretActor is the caller of a management request authenticated with the secret of the
// project whose client id is clientID.
func SecretActor(clientID string, m Meta) Actor {
	return Actor{Kind: ActorSecret, ID: clientID, Meta: m}
}

// Stamp returns e with the actor in it: the IP address and user agent in their columns and
// {"kind", "id"} as Detail["actor"]. e's Detail map is copied, not changed.
func (a Actor) Stamp(e store.AuditEvent) store.AuditEvent {
	detail := make(map[string]any, len(e.Detail)+1)
	maps.Copy(detail, e.Detail)
	detail["actor"] = map[string]any{"kind": a.Kind, "id": a.ID}
	e.Detail, e.IPAddress, e.UserAgent = detail, a.IPAddress, a.UserAgent
	return e
}
