package breach

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// rangeServer speaks the Pwned Passwords range API: GET /range/{5 upper-case hex digits} answers
// SUFFIX:COUNT lines with CRLF endings, and with Add-Padding: true mixes in entries of count 0.
// It checks each request as the real API would see it and keeps them for the privacy checks.
type rangeServer struct {
	t      *testing.T
	counts map[string]int // full upper-case SHA-1 -> count; 0 lists a hash as padding only
	lower  bool           // answer with lower-case suffixes

	mu       sync.Mutex
	requests []*http.Request
}

var rangePath = regexp.MustCompile(`^/range/[0-9A-F]{5}$`)

func (s *rangeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.Clone(context.Background()))
	s.mu.Unlock()
	if r.Method != http.MethodGet || !rangePath.MatchString(r.URL.Path) || r.URL.RawQuery != "" {
		s.t.Errorf("request %s %s, want GET /range/XXXXX with 5 upper-case hex digits", r.Method, r.URL)
		http.Error(w, "The hash prefix was not in a valid format", http.StatusBadRequest)
		return
	}
	if got := r.Header.Get("Add-Padding"); got != "true" {
		s.t.Errorf("Add-Padding = %q, want true", got)
	}
	if r.Header.Get("User-Agent") == "" || strings.HasPrefix(r.Header.Get("User-Agent"), "Go-http-client") {
		s.t.Errorf("User-Agent = %q, want the client's own", r.Header.Get("User-Agent"))
	}
	prefix := strings.TrimPrefix(r.URL.Path, "/range/")
	var lines []string
	for h, n := range s.counts {
		if strings.HasPrefix(h, prefix) {
			lines = append(lines, fmt.Sprintf("%s:%d", h[5:], n))
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 800 + rng.IntN(200) { // the real padding: random suffixes of count 0
		var b [18]byte
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		lines = append(lines, strings.ToUpper(hex.EncodeToString(b[:]))[:35]+":0")
	}
	slices.Sort(lines)
	body := strings.Join(lines, "\r\n")
	if s.lower {
		body = strings.ToLower(body)
	}
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprint(w, body) // like the API, no CRLF after the last line
}

func sha1Hex(s string) string {
	sum := sha1.Sum([]byte(s))
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

func startRangeServer(t *testing.T, counts map[string]int) (*rangeServer, *HIBP) {
	t.Helper()
	s := &rangeServer{t: t, counts: counts}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, &HIBP{BaseURL: srv.URL, Client: srv.Client(), UserAgent: "latchkey-test"}
}

func TestHIBPFindsBreachedPasswords(t *testing.T) {
	const leaked = "Tr0ub4dor&3 leaked"
	s, h := startRangeServer(t, map[string]int{sha1Hex(leaked): 42})
	for _, c := range []struct {
		password string
		want     bool
	}{
		{leaked, true},
		{"Ｔｒ０ｕｂ４ｄｏｒ＆３ leaked", true},  // NFKC: full-width forms are the same password
		{"tr0ub4dor&3 leaked", false}, // but not case-folded: HIBP hashes passwords as leaked
		{"correct horse battery staple", false},
	} {
		hit, err := h.Breached(context.Background(), c.password)
		if hit != c.want || err != nil {
			t.Errorf("Breached(%q) = %v, %v; want %v, nil", c.password, hit, err, c.want)
		}
	}
	// Only the 5-digit prefix leaves the server: not the password, its hash or the suffix.
	for _, r := range s.requests {
		for _, secret := range []string{leaked, "Tr0ub4dor", sha1Hex(leaked)[5:], strings.ToLower(sha1Hex(leaked)[5:])} {
			seen := r.URL.String() + fmt.Sprint(r.Header)
			if strings.Contains(seen, secret) {
				t.Errorf("a request carries %q: %s %v", secret, r.URL, r.Header)
			}
		}
	}
	if want := "/range/" + sha1Hex(leaked)[:5]; s.requests[0].URL.Path != want {
		t.Errorf("path %s, want %s", s.requests[0].URL.Path, want)
	}
}

func TestHIBPMatchesSuffixesInAnyCase(t *testing.T) {
	const leaked = "Tr0ub4dor&3 leaked"
	s := &rangeServer{t: t, counts: map[string]int{sha1Hex(leaked): 3}, lower: true}
	srv := httptest.NewServer(s)
	defer srv.Close()
	h := &HIBP{BaseURL: srv.URL, Client: srv.Client()}
	if hit, err := h.Breached(context.Background(), leaked); !hit || err != nil {
		t.Fatalf("Breached = %v, %v; want true, nil", hit, err)
	}
}

func TestHIBPIgnoresPaddingEntries(t *testing.T) {
	// The password's own suffix is in the answer, but as padding (count 0): not breached.
	const pw = "a password only in the padding"
	_, h := startRangeServer(t, map[string]int{sha1Hex(pw): 0})
	if hit, err := h.Breached(context.Background(), pw); hit || err != nil {
		t.Fatalf("Breached = %v, %v; want false, nil", hit, err)
	}
}

func TestHIBPServerErrors(t *testing.T) {
	for name, handler := range map[string]http.HandlerFunc{
		"500": func(w http.ResponseWriter, r *http.Request) { http.Error(w, "oops", http.StatusInternalServerError) },
		"429": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "2")
			http.Error(w, "Rate limit exceeded", http.StatusTooManyRequests)
		},
		"HTML as 200": func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, "<html><body>Log in to the Wi-Fi</body></html>")
		},
		"bad count": func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, strings.Repeat("A", 35)+":many\r\n")
		},
		"short suffix": func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ABCDEF:3\r\n") },
	} {
		srv := httptest.NewServer(handler)
		h := &HIBP{BaseURL: srv.URL, Client: srv.Client()}
		hit, err := h.Breached(context.Background(), "correct horse battery staple")
		if hit || err == nil {
			t.Errorf("%s: Breached = %v, %v; want false, an error", name, hit, err)
		} else if strings.Contains(err.Error(), "/range/"+sha1Hex("correct horse battery staple")[:5]) {
			t.Errorf("%s: error %q holds the hash prefix", name, err)
		}
		srv.Close()
	}
}

func TestHIBPTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	h := &HIBP{BaseURL: srv.URL, Client: srv.Client(), Timeout: 50 * time.Millisecond}
	start := time.Now()
	hit, err := h.Breached(context.Background(), "correct horse battery staple")
	if hit || err == nil {
		t.Fatalf("Breached = %v, %v; want false, an error", hit, err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("Breached returned after %v: the timeout did not apply", time.Since(start))
	}
	if strings.Contains(err.Error(), "/range/") {
		t.Errorf("error %q holds the request's path, whose prefix must not be logged", err)
	}
}

func TestHIBPUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	h := &HIBP{BaseURL: url}
	if hit, err := h.Breached(context.Background(), "correct horse battery staple"); hit || err == nil {
		t.Fatalf("Breached = %v, %v; want false, an error", hit, err)
	} else if strings.Contains(err.Error(), "/range/") {
		t.Errorf("error %q holds the request's path", err)
	}
}

func TestHIBPRefusesOversizedAnswers(t *testing.T) {
	const pw = "Tr0ub4dor&3 leaked"
	body := strings.Repeat(strings.Repeat("0", 35)+":0\r\n", 100) + sha1Hex(pw)[5:] + ":7"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, body) }))
	defer srv.Close()
	h := &HIBP{BaseURL: srv.URL, Client: srv.Client(), MaxResponseBytes: int64(len(body))}
	if hit, err := h.Breached(context.Background(), pw); !hit || err != nil {
		t.Fatalf("an answer of exactly the bound: Breached = %v, %v; want true, nil", hit, err)
	}
	h.MaxResponseBytes = int64(len(body)) - 1
	if hit, err := h.Breached(context.Background(), pw); hit || err == nil {
		t.Fatalf("an answer one byte over the bound: Breached = %v, %v; want false, an error", hit, err)
	}
	// The default bound, against a server that never stops talking: the client stops reading
	// at the bound rather than at the timeout.
	endless := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		line := []byte(strings.Repeat("0", 35) + ":0\r\n")
		for r.Context().Err() == nil {
			if _, err := w.Write(line); err != nil {
				return
			}
		}
	}))
	defer endless.Close()
	h = &HIBP{BaseURL: endless.URL, Client: endless.Client(), Timeout: 5 * time.Second}
	if hit, err := h.Breached(context.Background(), pw); hit || err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("an endless answer: Breached = %v, %v; want false, an error for its size", hit, err)
	}
}
