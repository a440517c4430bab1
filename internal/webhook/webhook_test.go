package webhook

import (
	"net/netip"
	"testing"
	"time"
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

func TestPublic(t *testing.T) {
	for addr, want := range map[string]bool{
		"93.184.216.34": true, "2606:4700::1111": true,
		"127.0.0.1": false, "::1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false,
		"169.254.169.254": false, "100.64.0.1": false, "0.0.0.0": false, "fc00::1": false, "fe80::1": false,
		"::ffff:127.0.0.1": false, "224.0.0.1": false,
	} {
		if got := public(netip.MustParseAddr(addr)); got != want {
			t.Errorf("public(%s) = %v, want %v", addr, got, want)
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
