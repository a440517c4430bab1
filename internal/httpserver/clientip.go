package httpserver

import (
	"net"
	"net/http"

	"github.com/latchkey-dev/latchkey/internal/token"
)

// ClientIP is the address of the peer that sent r. Forwarding headers are not trusted: any
// client can set them, and the IP feeds login logs and, later, throttling. Deployments behind
// a proxy need a trusted-proxy setting before X-Forwarded-For can be believed.
func ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Meta describes the request for sessions, login logs and audit events. The user agent is
// capped: it is client-controlled and stored.
func Meta(r *http.Request) token.Meta {
	ua := r.UserAgent()
	if len(ua) > 512 {
		ua = ua[:512]
	}
	return token.Meta{IPAddress: ClientIP(r), UserAgent: ua}
}
