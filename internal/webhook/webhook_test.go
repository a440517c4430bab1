package webhook

import (
	"net/netip"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/failure"
)

func TestCheckURL(t *testing.T) {
	for raw, ok := range map[string]bool{
		"https://hooks.example.com/x?a=1": true,
		"HTTPS://hooks.example.com":       true,
		"http://127.0.0.1:8080/hook":      true,
		"http://[::1]/hook":               true,
		"http://localhost/hook":           true,
		"http://hooks.example.com/x":      false,
		"http://10.0.0.1/x":               false,
		"ftp://hooks.example.com/x":       false,
		"https://u:p@hooks.example.com/":  false,
		"https://hooks.example.com/#frag": false,
		"/relative":                       false,
		"":                                false,
	} {
		if _, err := CheckURL(raw); (err == nil) != ok {
			t.Errorf("CheckURL(%q) = %v, want ok %v", raw, err, ok)
		}
	}
}

// TestPublic is the table of addresses a webhook may connect to: global unicast only. Every
// form that embeds an IPv4 address (IPv4-mapped, IPv4-compatible, IPv4-translated, NAT64's
// well-known prefix, 6to4) is judged by the IPv4 address inside, and the IANA special-purpose
// ranges that are not globally reachable are refused.
func TestPublic(t *testing.T) {
	for addr, want := range map[string]bool{
		// Public.
		"93.184.216.34": true, "2606:4700::1111": true, "8.8.8.8": true, "1.1.1.1": true,
		"64:ff9b::5db8:d822":   true, // NAT64 of 93.184.216.34
		"2002:5db8:d822::1":    true, // 6to4 of 93.184.216.34
		"::ffff:93.184.216.34": true, "2a00:1450:4001:80b::200e": true,
		// Loopback, private, link-local, shared, unspecified, broadcast, multicast.
		"127.0.0.1": false, "127.255.255.254": false, "::1": false, "10.1.2.3": false, "172.16.0.1": false,
		"192.168.1.1": false, "169.254.169.254": false, "100.64.0.1": false, "100.127.255.254": false,
		"0.0.0.0": false, "0.1.2.3": false, "255.255.255.255": false, "224.0.0.1": false, "239.255.255.250": false,
		"::": false, "fc00::1": false, "fd12:3456::1": false, "fe80::1": false, "ff02::1": false, "ff0e::1": false,
		// IANA special-purpose IPv4 ranges that are not globally reachable.
		"192.0.0.1": false, "192.0.0.170": false, // IETF protocol assignments, NAT64 discovery
		"192.0.2.1": false, "198.51.100.7": false, "203.0.113.9": false, // TEST-NET-1..3
		"198.18.0.1": false, "198.19.255.254": false, // benchmarking
		"240.0.0.1": false, "254.1.2.3": false, // reserved
		"192.88.99.1": false, // 6to4 relay anycast (deprecated)
		// IPv6 ranges that are not globally reachable.
		"fec0::1": false, "feff::1": false, // site-local (deprecated)
		"100::1": false, "100::ffff:ffff:ffff:ffff": false, // discard-only
		"2001:db8::1": false, "2001:db8:ffff::1": false, // documentation
		"3fff::1":      false, // documentation (RFC 9637)
		"2001::1":      false, // Teredo, inside IETF protocol assignments (2001::/23)
		"2001:2::1":    false, // benchmarking
		"2001:10::1":   false, // ORCHID
		"5f00::1":      false, // SRv6 SIDs
		"64:ff9b:1::1": false, // local-use NAT64 (RFC 8215)
		// Embedded IPv4 addresses that are not public.
		"::ffff:127.0.0.1": false, "::ffff:10.0.0.1": false, "::ffff:169.254.169.254": false,
		"::127.0.0.1": false, "::10.0.0.1": false, "::169.254.169.254": false, // IPv4-compatible
		"::ffff:0:127.0.0.1": false, "::ffff:0:10.0.0.1": false, // IPv4-translated (SIIT)
		"64:ff9b::7f00:1": false, "64:ff9b::a9fe:a9fe": false, "64:ff9b::a00:1": false, "64:ff9b::c000:201": false, // NAT64
		"2002:7f00:1::1": false, "2002:a9fe:a9fe::": false, "2002:c0a8:101::1": false, "2002:0:0::1": false, // 6to4
	} {
		if got := public(netip.MustParseAddr(addr)); got != want {
			t.Errorf("public(%s) = %v, want %v", addr, got, want)
		}
	}
}

// TestCheckHostRefusesLiteralNonPublicAddresses: a URL naming a non-public address outright
// is refused when the webhook is made, not only when it is dialled; names are left to the
// dial-time check (they resolve only then), and with private webhooks allowed nothing is.
func TestCheckHostRefusesLiteralNonPublicAddresses(t *testing.T) {
	for raw, ok := range map[string]bool{
		"https://hooks.example.com/x":        true,
		"https://93.184.216.34/x":            true,
		"https://[2606:4700::1111]:8443/x":   true,
		"http://localhost:8080/x":            true, // a name: checked when dialled
		"http://127.0.0.1:8080/x":            false,
		"http://[::1]/x":                     false,
		"https://10.0.0.1/x":                 false,
		"https://169.254.169.254/latest":     false,
		"https://[::ffff:169.254.169.254]/x": false,
		"https://[64:ff9b::a9fe:a9fe]/x":     false,
		"https://[2002:a9fe:a9fe::1]/x":      false,
		"https://[::a9fe:a9fe]/x":            false,
		"https://198.18.0.1/x":               false,
		"https://[fe80::1%25eth0]/x":         false,
		"https://[2001:db8::1]/x":            false,
		"https://0.0.0.0/x":                  false,
	} {
		u, err := CheckURL(raw)
		if err == nil {
			err = checkHost(u, false)
		}
		if (err == nil) != ok {
			t.Errorf("CheckURL+checkHost(%q) = %v, want ok %v", raw, err, ok)
		}
		if err != nil {
			if fe, isFailure := failure.As(err); !isFailure || fe.Code != "invalid_url" || fe.Field != "url" {
				t.Errorf("%q: error %#v, want invalid_url naming url", raw, err)
			}
		}
		if u, err := CheckURL(raw); err == nil {
			if err := checkHost(u, true); err != nil {
				t.Errorf("checkHost(%q) with private webhooks allowed = %v", raw, err)
			}
		}
	}
}

func TestRetryDelay(t *testing.T) {
	want := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute}
	for i, w := range want {
		if got := RetryDelay(i + 1); got != w {
			t.Errorf("RetryDelay(%d) = %s, want %s", i+1, got, w)
		}
	}
	if got := RetryDelay(40); got != time.Hour {
		t.Errorf("RetryDelay(40) = %s, want the 1h cap", got)
	}
}

func TestSign(t *testing.T) {
	// The expected value is HMAC-SHA256(key "whsec_test", "1700000000.{}"), computed with
	// openssl: printf '1700000000.{}' | openssl dgst -sha256 -hmac whsec_test
	got := Sign("whsec_test", time.Unix(1700000000, 0), []byte("{}"))
	if got != "t=1700000000,v1="+wantSign {
		t.Errorf("Sign = %s", got)
	}
}

const wantSign = "35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91"
