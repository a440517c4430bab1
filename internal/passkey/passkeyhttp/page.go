package passkeyhttp

import (
	_ "embed"
	"net/http"

	"github.com/latchkey-dev/latchkey/internal/httpserver"
)

var (
	//go:embed page/passkey.html
	pageHTML []byte
	//go:embed page/passkey.js
	pageScript []byte
)

// pagePolicy lets the page run its own module and call its own origin, nothing else: it handles
// access tokens, so no third-party script and no inline script may ever run on it. The module is
// an external file, so 'self' suffices and the page needs no nonce. Styles stay 'unsafe-inline'
// (the page's stylesheet and the honeypot's style attribute are inline; a nonce would disable
// 'unsafe-inline' and nonces do not cover style attributes); CSS cannot run script.
var pagePolicy = httpserver.PagePolicy{
	Script:     []string{"'self'"},
	Style:      []string{"'unsafe-inline'"},
	Connect:    []string{"'self'"},
	Img:        []string{"'self'"},
	FormAction: []string{"'self'"},
}

func servePage(w http.ResponseWriter, r *http.Request) error {
	httpserver.SetPageHeaders(w, r, pagePolicy)
	writeAsset(w, pageHTML)
	return nil
}

func serveScript(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	writeAsset(w, pageScript)
	return nil
}

func writeAsset(w http.ResponseWriter, body []byte) {
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body) // the status is sent; a failed write means the client went away
}
