package breach

import (
	"context"
	"crypto/sha1" //nolint:gosec // the Pwned Passwords API is keyed by SHA-1; nothing is protected by it here
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/unicode/norm"
)

// The defaults of an HIBP whose fields are left zero.
const (
	DefaultHIBPBaseURL = "https://api.pwnedpasswords.com"
	// defaultHIBPTimeout bounds a whole lookup, connection to last byte. The API is served from
	// a CDN and answers in tens of milliseconds; a user choosing a password should not wait
	// longer than this for a check that is only advisory when it fails.
	defaultHIBPTimeout = 3 * time.Second
	// defaultHIBPMaxBytes bounds a response body. A padded range holds about 800 to 2,000
	// lines of about 40 bytes, under 100 KB; ten times that leaves room for growth while a
	// misbehaving server cannot make us buffer without limit.
	defaultHIBPMaxBytes = 1 << 20
	defaultUserAgent    = "latchkey (+https://github.com/latchkey-dev/latchkey)"
	// hibpSuffixLen is the hex digits of a SHA-1 after the 5 of the range prefix.
	hibpSuffixLen = 40 - 5
)

// HIBP asks Have I Been Pwned's Pwned Passwords range API (k-anonymity): only the first 5 hex
// digits of the password's SHA-1 leave the server, and the answer is every known suffix in that
// range, padded with fake entries of count 0 (Add-Padding) so that someone watching the
// encrypted traffic cannot tell the prefix from the response's size. The password, its full
// hash and its prefix are never logged or put in an error. Fields left zero take the defaults.
type HIBP struct {
	BaseURL          string        // DefaultHIBPBaseURL; a mirror or a test server otherwise
	Client           *http.Client  // a client on net/http's default transport
	UserAgent        string        // the API refuses requests without one
	Timeout          time.Duration // per lookup, 3 s
	MaxResponseBytes int64         // 1 MiB
}

// Breached reports whether the password, NFKC-normalised but not case-folded (HIBP hashes
// passwords as they were leaked), appears in Pwned Passwords with a count above zero. Any
// failure to get a well-formed answer is an error: see Checker for what to do with it.
func (h *HIBP) Breached(ctx context.Context, password string) (bool, error) {
	sum := sha1.Sum([]byte(norm.NFKC.String(password))) //nolint:gosec // see the import
	digest := strings.ToUpper(hex.EncodeToString(sum[:]))
	prefix, suffix := digest[:5], digest[5:]

	timeout := h.Timeout
	if timeout <= 0 {
		timeout = defaultHIBPTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	base := strings.TrimSuffix(h.BaseURL, "/")
	if base == "" {
		base = DefaultHIBPBaseURL
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/range/"+prefix, nil)
	if err != nil {
		return false, fmt.Errorf("query Pwned Passwords at %s: %w", base, redact(err))
	}
	req.Header.Set("Add-Padding", "true")
	ua := h.UserAgent
	if ua == "" {
		ua = defaultUserAgent
	}
	req.Header.Set("User-Agent", ua)

	client := h.Client
	if client == nil {
		client = &http.Client{}
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, fmt.Errorf("query Pwned Passwords at %s: %w", base, redact(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("query Pwned Passwords at %s: answered %s", base, resp.Status)
	}
	limit := h.MaxResponseBytes
	if limit <= 0 {
		limit = defaultHIBPMaxBytes
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return false, fmt.Errorf("read the answer of Pwned Passwords at %s: %w", base, redact(err))
	}
	if int64(len(body)) > limit {
		return false, fmt.Errorf("read the answer of Pwned Passwords at %s: larger than %d bytes", base, limit)
	}
	found, err := findSuffix(string(body), suffix)
	if err != nil {
		return false, fmt.Errorf("read the answer of Pwned Passwords at %s: %w", base, err)
	}
	return found, nil
}

// findSuffix reads a range answer, lines of SUFFIX:COUNT ending in CRLF, and reports whether
// suffix is there with a count above zero; entries of count 0 are padding. The answer is parsed
// strictly so that a wrong server (a captive portal, an error page served as 200) is reported
// rather than taken for "not breached".
func findSuffix(body, suffix string) (bool, error) {
	found := false
	for i, line := range strings.Split(body, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			continue // the last line's terminator, if any
		}
		s, c, ok := strings.Cut(line, ":")
		count, err := strconv.ParseUint(c, 10, 64)
		if !ok || len(s) != hibpSuffixLen || err != nil {
			return false, fmt.Errorf("line %d is not SUFFIX:COUNT", i+1)
		}
		if count > 0 && strings.EqualFold(s, suffix) {
			found = true
		}
	}
	return found, nil
}

// redact drops the URL from an error of net/http: it holds the hash prefix, which a log must not
// keep next to a user id (with it, guessing that user's password offline gets 2^20 times easier).
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
