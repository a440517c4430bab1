package httpserver

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/latchkey-dev/latchkey/internal/audit"
)

type clientIPKey struct{}

// TrustProxies resolves each request's client IP before h sees it. A request from a trusted
// proxy is from the right-most address of its X-Forwarded-For that is not itself a trusted
// proxy: addresses left of that were written by the client and prove nothing. Requests from
// anyone else are from their peer address, whatever headers they send.
func TrustProxies(h http.Handler, trusted []netip.Prefix) http.Handler {
	if len(trusted) == 0 {
		return h
	}
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a.Unmap()) {
				return true
			}
		}
		return false
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, err := netip.ParseAddr(peerHost(r))
		if err != nil || !isTrusted(peer) {
			h.ServeHTTP(w, r)
			return
		}
		client := peer
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break // a malformed hop: trust nothing beyond it
			}
			client = a.Unmap()
			if !isTrusted(client) {
				break
			}
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientIPKey{}, client.String())))
	})
}

// ClientIP is the address of the client that sent r: the peer, or the client a trusted proxy
// names (TrustProxies). Forwarding headers from anyone else are ignored: any client can set
// them, and the IP feeds login logs and throttling.
func ClientIP(r *http.Request) string {
	if ip, ok := r.Context().Value(clientIPKey{}).(string); ok {
		return ip
	}
	return peerHost(r)
}

// ClientIPFrom is the client IP of the request ctx belongs to (Wrap puts it there), for code
// that has a context but not the request, such as a ProjectAuthenticator; "" outside one.
func ClientIPFrom(ctx context.Context) string {
	ip, _ := ctx.Value(clientIPKey{}).(string)
	return ip
}

func peerHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Meta describes the request for sessions, login logs and audit events. The user agent is
// capped: it is client-controlled and stored.
func Meta(r *http.Request) audit.Meta {
	ua := r.UserAgent()
	if len(ua) > 512 {
		ua = ua[:512]
	}
	return audit.Meta{IPAddress: ClientIP(r), UserAgent: ua}
}
