package httpserver

import (
	"net"
	"net/http"
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
