package secretbox

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

func TestParseKeys(t *testing.T) {
	// 0xfb bytes encode to '+' and '/' in the standard alphabet, '-' and '_' in the URL one.
	a, b, c := testKey(1), testKey(0xfb), testKey(3)
	std, raw := base64.StdEncoding.EncodeToString, base64.RawStdEncoding.EncodeToString
	url, rawURL := base64.URLEncoding.EncodeToString, base64.RawURLEncoding.EncodeToString
	for _, tc := range []struct {
		name string
		in   string
		want [][]byte
	}{
		{"one std padded", std(a), [][]byte{a}},
		{"one std unpadded", raw(b), [][]byte{b}},
		{"one URL padded", url(b), [][]byte{b}},
		{"one URL unpadded", rawURL(b), [][]byte{b}},
		{"commas", std(a) + "," + url(b) + "," + raw(c), [][]byte{a, b, c}},
		{"comma and spaces", std(a) + " , " + std(b), [][]byte{a, b}},
		{"spaces", std(a) + "  " + std(b), [][]byte{a, b}},
		{"newlines and tabs", "\n" + std(a) + "\r\n\t" + std(b) + "\n", [][]byte{a, b}},
		{"surrounding whitespace", "  " + std(c) + "\n", [][]byte{c}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseKeys(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d keys, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if !bytes.Equal(got[i], tc.want[i]) {
					t.Errorf("key %d = %x, want %x", i+1, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestParseKeysErrors(t *testing.T) {
	good := EncodeKey(testKey(1))
	short := EncodeKey(testKey(2)[:16])
	long := EncodeKey(append(testKey(3), 0))
	hexKey := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name   string
		in     string
		want   string // in the error
		secret string // must not be in the error
	}{
		{"empty", "", "no master key", ""},
		{"blank", " \n\t ", "no master key", ""},
		{"16 bytes", good + "," + short, "entry 2 decodes to 16 bytes, not 32", short},
		{"33 bytes", long, "entry 1 decodes to 33 bytes", long},
		{"hex instead of base64", hexKey, "entry 1 decodes to 48 bytes", hexKey},
		{"not base64", good + " " + "!!not*base64!!", "entry 2 is not valid base64", "!!not*base64!!"},
		{"mixed alphabets", strings.Replace(EncodeKey(testKey(0xfb)), "+", "-", 1), "entry 1 is not valid base64", "-"},
		{"wrong padding", good + "=", "entry 1 is not valid base64", good},
		{"empty between commas", good + ",," + good, "entry 2 is empty", good},
		{"leading comma", "," + good, "entry 1 is empty", good},
		{"trailing comma", good + ", ", "entry 2 is empty", good},
		{"only commas", ",", "entry 1 is empty", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := ParseKeys(tc.in)
			if err == nil {
				t.Fatalf("accepted: %d keys", len(keys))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if tc.secret != "" && len(tc.secret) > 1 && strings.Contains(err.Error(), tc.secret) {
				t.Errorf("error %q quotes the input", err)
			}
		})
	}
}

func TestParseKeyFile(t *testing.T) {
	a, b := EncodeKey(testKey(1)), EncodeKey(testKey(2))
	kf, err := parseKeyFile([]byte("# master keys\n\n" + a + "  # current, 2026\r\n  " + b + "\n#" + b[:10] + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(kf.keys) != 2 || !bytes.Equal(kf.keys[0], testKey(1)) || !bytes.Equal(kf.keys[1], testKey(2)) {
		t.Fatalf("keys = %x", kf.keys)
	}
	if len(kf.lines) != 5 || kf.keyLines[0] != 2 || kf.keyLines[1] != 3 {
		t.Errorf("lines = %q, key lines %v", kf.lines, kf.keyLines)
	}

	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "holds no master key"},
		{"comments only", "# nothing yet\n\n", "holds no master key"},
		{"two keys on a line", "# k\n" + a + " " + b + "\n", "line 2 is not valid base64; write one key per line"},
		{"short key", a + "\n" + EncodeKey(testKey(2)[:31]) + "\n", "line 2 decodes to 31 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseKeyFile([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("parseKeyFile: %v; want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), a[:20]) || strings.Contains(err.Error(), b[:20]) {
				t.Errorf("error %q quotes a key", err)
			}
		})
	}
}
