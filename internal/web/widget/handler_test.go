package widget_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/httpserver"
	"github.com/latchkey-dev/latchkey/internal/web/widget"
)

// serve runs the widget's route behind the router and the security headers every response of
// the server passes, on a real HTTP server.
func serve(t *testing.T) string {
	t.Helper()
	rt := httpserver.NewRouter(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	widget.Handler{}.Mount(rt)
	srv := httptest.NewServer(httpserver.SecureHeaders(rt, "https://auth.example.com"))
	t.Cleanup(srv.Close)
	return srv.URL
}

func get(t *testing.T, method, url string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, body
}

// TestScriptHeaders: the script is served byte for byte as committed, as JavaScript, with a
// strong ETag, a short public max-age, and the headers that let any origin load it as a module.
func TestScriptHeaders(t *testing.T) {
	base := serve(t)
	want, err := os.ReadFile("widget.js")
	if err != nil {
		t.Fatal(err)
	}
	res, body := get(t, "GET", base+widget.Path, map[string]string{"Origin": "https://shop.example.org"})
	if res.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
		t.Fatalf("GET %s: %d, %d bytes; want 200 and the %d bytes of widget.js", widget.Path, res.StatusCode, len(body), len(want))
	}
	for name, value := range map[string]string{
		"Content-Type":                 "text/javascript; charset=utf-8",
		"Cache-Control":                "public, max-age=300",
		"Access-Control-Allow-Origin":  "*",
		"Cross-Origin-Resource-Policy": "cross-origin",
		"X-Content-Type-Options":       "nosniff",
		"Etag":                         widget.ETag(),
	} {
		if got := res.Header.Get(name); got != value {
			t.Errorf("%s: %q, want %q", name, got, value)
		}
	}
	if !regexp.MustCompile(`^"[0-9a-f]{32}"$`).MatchString(widget.ETag()) {
		t.Errorf("ETag %q: want a strong tag (quoted, no W/) of 32 hex digits", widget.ETag())
	}
	if res.Header.Get("Last-Modified") != "" || res.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("Last-Modified %q, Allow-Credentials %q: want neither (the ETag is the validator; no credentials)",
			res.Header.Get("Last-Modified"), res.Header.Get("Access-Control-Allow-Credentials"))
	}

	res, body = get(t, "HEAD", base+widget.Path, nil)
	if res.StatusCode != http.StatusOK || len(body) != 0 || res.Header.Get("Etag") != widget.ETag() {
		t.Errorf("HEAD: %d, %d bytes, ETag %q; want 200, no body, the ETag", res.StatusCode, len(body), res.Header.Get("Etag"))
	}
	// The router answers other methods in the documented error shape (400 method_not_allowed).
	res, _ = get(t, "POST", base+widget.Path, nil)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(res.Header.Get("Allow"), "GET") {
		t.Errorf("POST: %d, Allow %q; want 400 naming GET", res.StatusCode, res.Header.Get("Allow"))
	}
}

// TestScriptRevalidation: a browser revalidating with the current ETag gets 304 and no body
// (also with the weak form, which If-None-Match compares weakly), and one holding an older
// copy gets the script.
func TestScriptRevalidation(t *testing.T) {
	base := serve(t)
	for _, c := range []struct {
		name, inm string
		status    int
	}{
		{"the current tag", widget.ETag(), http.StatusNotModified},
		{"the current tag, weak", "W/" + widget.ETag(), http.StatusNotModified},
		{"a list with the current tag", `"0000", ` + widget.ETag(), http.StatusNotModified},
		{"any", "*", http.StatusNotModified},
		{"an older tag", `"00000000000000000000000000000000"`, http.StatusOK},
	} {
		res, body := get(t, "GET", base+widget.Path, map[string]string{"If-None-Match": c.inm})
		if res.StatusCode != c.status {
			t.Errorf("If-None-Match %s: %d, want %d", c.name, res.StatusCode, c.status)
			continue
		}
		if c.status == http.StatusNotModified {
			if len(body) != 0 || res.Header.Get("Etag") != widget.ETag() || res.Header.Get("Cache-Control") != widget.CacheControl {
				t.Errorf("If-None-Match %s: 304 with %d bytes, ETag %q, Cache-Control %q; want no body and both headers",
					c.name, len(body), res.Header.Get("Etag"), res.Header.Get("Cache-Control"))
			}
		} else if len(body) == 0 {
			t.Errorf("If-None-Match %s: 200 without the script", c.name)
		}
	}
}

// TestScriptRanges: ranges are served from the same bytes (the ETag is strong, so a resumed
// download can trust them), and one past the end is refused with 416.
func TestScriptRanges(t *testing.T) {
	base := serve(t)
	want, err := os.ReadFile("widget.js")
	if err != nil {
		t.Fatal(err)
	}
	res, body := get(t, "GET", base+widget.Path, map[string]string{"Range": "bytes=0-9", "If-Range": widget.ETag()})
	if res.StatusCode != http.StatusPartialContent || !bytes.Equal(body, want[:10]) {
		t.Errorf("Range bytes=0-9: %d %q, want 206 and the first 10 bytes", res.StatusCode, body)
	}
	res, _ = get(t, "GET", base+widget.Path, map[string]string{"Range": fmt.Sprintf("bytes=%d-", len(want)+10)})
	if res.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("a range past the end: %d, want 416", res.StatusCode)
	}
}

// TestScriptRules checks the rules the widget promises pages with a strict CSP, on its source:
// no inline style attributes or eval-like calls, and it parses as an ES module (with Node when
// it is installed; the Go build itself never needs Node).
func TestScriptRules(t *testing.T) {
	src, err := os.ReadFile("widget.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{".style.", "style=", "setAttribute(\"style", "eval(", "new Function(", "innerHTML", "document.write"} {
		if bytes.Contains(src, []byte(bad)) {
			t.Errorf("widget.js contains %q: a strict CSP (no 'unsafe-inline', no 'unsafe-eval') would block or forbid it", bad)
		}
	}
	for _, part := range []string{`part: "form"`, `part: "input"`, `part: "button primary"`, `part: "error"`} {
		if !strings.Contains(string(src), part) {
			t.Errorf("widget.js has no element with %s: pages style the widget through these ::part() names", part)
		}
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed; skipping the syntax check (the browser tests in internal/app load the module)")
	}
	mjs := filepath.Join(t.TempDir(), "widget.mjs")
	if err := os.WriteFile(mjs, src, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.CommandContext(t.Context(), node, "--check", mjs).CombinedOutput(); err != nil {
		t.Errorf("node --check widget.js: %v\n%s", err, out)
	}
}
