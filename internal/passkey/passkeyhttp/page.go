package passkeyhttp

import (
	_ "embed"
	"net/http"
)

var (
	//go:embed page/passkey.html
	pageHTML []byte
	//go:embed page/passkey.js
	pageScript []byte
)

// pageCSP lets the page run its own module and call its own origin, nothing else: it handles
// access tokens, so no third-party script may ever run on it.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; " +
	"img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func servePage(w http.ResponseWriter, _ *http.Request) error {
	writeAsset(w, "text/html; charset=utf-8", pageHTML)
	return nil
}

func serveScript(w http.ResponseWriter, _ *http.Request) error {
	writeAsset(w, "text/javascript; charset=utf-8", pageScript)
	return nil
}

func writeAsset(w http.ResponseWriter, contentType string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body) // the status is sent; a failed write means the client went away
}
