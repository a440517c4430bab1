package webhook

import (
	"net/netip"
	"net/url"

	"github.com/latchkey-dev/latchkey/internal/failure"
)

// notGlobal are the IANA special-purpose ranges (RFC 6890 and its updates) that are not
// globally reachable, beyond what netip's IsGlobalUnicast and IsPrivate already exclude
// (loopback, link-local, multicast, unspecified, broadcast, RFC 1918, fc00::/7). A webhook
// must never make the server connect to any of them: they are the server's own networks,
// carriers' and clouds' internal space, or addresses no one should answer from.
var notGlobal = func() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range []string{
		"0.0.0.0/8",       // "this network"
		"100.64.0.0/10",   // shared address space (CGNAT, cloud internals)
		"192.0.0.0/24",    // IETF protocol assignments
		"192.0.2.0/24",    // TEST-NET-1
		"192.88.99.0/24",  // 6to4 relay anycast (deprecated)
		"198.18.0.0/15",   // benchmarking
		"198.51.100.0/24", // TEST-NET-2
		"203.0.113.0/24",  // TEST-NET-3
		"240.0.0.0/4",     // reserved
		"64:ff9b:1::/48",  // local-use IPv4/IPv6 translation (RFC 8215)
		"100::/64",        // discard-only
		"2001::/23",       // IETF protocol assignments: Teredo, benchmarking, ORCHID, ...
		"2001:db8::/32",   // documentation
		"3fff::/20",       // documentation (RFC 9637)
		"5f00::/16",       // SRv6 SIDs (RFC 9602)
		"fec0::/10",       // site-local (deprecated)
	} {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}()

// Prefixes whose addresses carry an IPv4 address that is the real destination.
var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")    // RFC 6052 well-known prefix: the last 32 bits
	sixToFour = netip.MustParsePrefix("2002::/16")       // RFC 3056: bits 16 to 47
	v4Compat  = netip.MustParsePrefix("::/96")           // deprecated IPv4-compatible: the last 32 bits
	siit      = netip.MustParsePrefix("::ffff:0:0:0/96") // IPv4-translated (RFC 2765): the last 32 bits
)

// embeddedIPv4 returns the IPv4 address that a (an IPv6 address) stands for, if any.
func embeddedIPv4(a netip.Addr) (netip.Addr, bool) {
	b := a.As16()
	switch {
	case nat64.Contains(a), v4Compat.Contains(a), siit.Contains(a):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

// public reports whether a is a globally reachable unicast address, judging an IPv6 address
// that embeds an IPv4 one (mapped, compatible, translated, NAT64, 6to4) by the IPv4 address:
// a NAT64 gateway or 6to4 relay would deliver to it.
func public(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	if a.Is6() {
		if v4, ok := embeddedIPv4(a); ok {
			return public(v4)
		}
	}
	if !a.IsGlobalUnicast() || a.IsPrivate() {
		return false
	}
	for _, p := range notGlobal {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// checkHost refuses, when private webhooks are not allowed, a URL whose host is an IP address
// that is not public: the dial-time check would refuse every delivery anyway, and saying so
// when the webhook is made is what the operator can act on. Host names are judged when
// dialled, on the addresses they resolve to then.
func checkHost(raw string, allowPrivate bool) error {
	if allowPrivate {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return failure.InvalidField("invalid_url", "url", "must be an absolute https URL")
	}
	a, err := netip.ParseAddr(u.Hostname())
	if err != nil {
		return nil // a name
	}
	if !public(a) {
		return failure.InvalidField("invalid_url", "url",
			"names "+a.String()+", which is not a public address: webhooks reach only public addresses (an operator may allow private ones with --private-webhooks)")
	}
	return nil
}
