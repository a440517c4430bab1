package widget

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/latchkey-dev/latchkey/internal/httpserver"
)

// script is the widget's source exactly as committed: it is hand-written and served as is, so
// the Go build needs no Node and what browsers run is what code review read. go:embed fails the
// build when the file is missing, so it is always there.
//
//go:embed widget.js
var script []byte

// etag is the script's strong validator, computed once: the bytes never change while the
// binary runs. Strong, because it names these exact bytes, so a 304 or a range is always safe.
var etag = func() string {
	sum := sha256.Sum256(script)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}()

// Path is where the widget is served. Pages include it with
// <script type="module" src="https://AUTH/login/widget.js">, and the widget takes the server's
// origin from that URL (import.meta.url).
const Path = "/login/widget.js"

// CacheControl lets browsers and CDNs keep the script for five minutes and then revalidate it
// with its ETag. The URL carries no version (pages embed one fixed address), so a long max-age
// would keep a fixed bug alive in visitors' caches; a revalidation costs a 304 only.
const CacheControl = "public, max-age=300"

// ETag returns the script's strong entity tag, for tests and for operators checking which
// widget a deployment serves.
func ETag() string { return etag }

// Handler serves the widget script. It has no dependencies: the script is static.
type Handler struct{}

// Mount registers GET (and so HEAD) /login/widget.js on rt. The route is public: the script
// holds no secret, and a page loads it before it knows anything.
func (h Handler) Mount(rt *httpserver.Router) {
	rt.Handle("GET "+Path, httpserver.Public, h.serve)
}

func (Handler) serve(w http.ResponseWriter, r *http.Request) error {
	hd := w.Header()
	hd.Set("Content-Type", "text/javascript; charset=utf-8")
	hd.Set("Cache-Control", CacheControl)
	hd.Set("ETag", etag)
	// Module scripts are fetched in CORS mode: without this header no other origin could run
	// the widget. "*" is right for a public file fetched without credentials; it replaces the
	// router's per-project echo, which is for the API.
	hd.Set("Access-Control-Allow-Origin", "*")
	// Pages with Cross-Origin-Embedder-Policy: require-corp may load it from another origin.
	hd.Set("Cross-Origin-Resource-Policy", "cross-origin")
	hd.Set("X-Content-Type-Options", "nosniff")
	// ServeContent answers If-None-Match with 304 (and Range requests) from the ETag set above;
	// a zero modification time keeps Last-Modified out, so the ETag is the one validator.
	http.ServeContent(w, r, "widget.js", time.Time{}, bytes.NewReader(script))
	return nil
}
