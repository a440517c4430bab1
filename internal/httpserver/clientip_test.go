package httpserver

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestTrustProxies(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	var got string
	h := TrustProxies(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = ClientIP(r) }), trusted)
	cases := []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"untrusted peer's header is ignored", "203.0.113.9:5000", []string{"198.51.100.1"}, "203.0.113.9"},
		{"trusted proxy names the client", "10.0.0.2:5000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"addresses the client wrote are skipped", "10.0.0.2:5000", []string{"192.0.2.66, 198.51.100.1, 10.1.1.1"}, "198.51.100.1"},
		{"several header lines read as one list", "10.0.0.2:5000", []string{"192.0.2.66", "198.51.100.1"}, "198.51.100.1"},
		{"only proxies: the left-most", "10.0.0.2:5000", []string{"10.3.3.3, 10.1.1.1"}, "10.3.3.3"},
		{"a malformed hop stops the walk", "10.0.0.2:5000", []string{"192.0.2.66, not-an-ip, 10.1.1.1"}, "10.1.1.1"},
		{"no header: the proxy itself", "10.0.0.2:5000", nil, "10.0.0.2"},
		{"IPv6 proxy, IPv4-mapped client", "[::1]:5000", []string{"::ffff:198.51.100.7"}, "198.51.100.7"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.peer
		for _, v := range c.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
		if got != c.want {
			t.Errorf("%s: client IP %q, want %q", c.name, got, c.want)
		}
	}
	// Without trusted proxies the header is never read.
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.0.0.2:5000"
	r.Header.Set("X-Forwarded-For", "198.51.100.1")
	TrustProxies(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = ClientIP(r) }), nil).ServeHTTP(httptest.NewRecorder(), r)
	if got != "10.0.0.2" {
		t.Errorf("no trusted proxies: client IP %q", got)
	}
}
