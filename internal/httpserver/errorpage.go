package httpserver

import (
	"errors"
	"html/template"
	"log/slog"
	"net/http"
)

// ErrorPage is what an HTML page says about a failed request to a person in a browser, such
// as one who opened an emailed link: the page's own words for its client errors. The status,
// Retry-After and error code are those of the JSON mapping (WriteError); throttled and server
// errors get this package's words instead, so that no page tells more of a 5xx than the JSON.
type ErrorPage struct {
	Brand   string // the project's name, shown above the title
	Title   string
	Message string
}

// AsPage marks err, returned by a route handler, to be answered as an HTML page rather than
// as JSON. A nil err stays nil.
func AsPage(err error, page ErrorPage) error {
	if err == nil {
		return nil
	}
	return &pageError{err: err, page: page}
}

type pageError struct {
	err  error
	page ErrorPage
}

func (e *pageError) Error() string { return e.err.Error() }
func (e *pageError) Unwrap() error { return e.err }

// errorPagePolicy lets the page load nothing but its own stylesheet.
var errorPagePolicy = PagePolicy{Style: []string{NonceSource}}

var errorPageTemplate = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style nonce="{{.Nonce}}">body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#1f2937}h1{font-size:1.4rem}.code{color:#6b7280;font-size:.85rem}</style>
</head><body>{{if .Brand}}<p>{{.Brand}}</p>{{end}}<h1>{{.Title}}</h1><p>{{.Message}}</p><p class="code">Error code: {{.Code}}</p></body></html>
`))

// writePage writes err as p's HTML page, with the status and code body maps it to.
func writePage(w http.ResponseWriter, r *http.Request, body ErrorBody, p ErrorPage) {
	switch {
	case body.Status == http.StatusTooManyRequests:
		p.Title, p.Message = "Too many requests", "Wait a moment, then try again."
	case body.Status == http.StatusServiceUnavailable:
		p.Title, p.Message = "Temporarily unavailable", "The service cannot answer right now. Try again in a moment."
	case body.Status >= 500:
		p.Title, p.Message = "Something went wrong", "The request failed on our side. Try again in a moment."
	case p.Title == "":
		// A client error's description is what the JSON tells the client too.
		p.Title, p.Message = "This request cannot be completed", body.Description
	}
	nonce := SetPageHeaders(w, r, errorPagePolicy)
	w.WriteHeader(body.Status)
	_ = errorPageTemplate.Execute(w, struct {
		ErrorPage
		Code, Nonce string
	}{p, body.Code, nonce})
}

// pageOf returns the page err was marked with (AsPage), if any.
func pageOf(err error) (ErrorPage, bool) {
	var pe *pageError
	if errors.As(err, &pe) {
		return pe.page, true
	}
	return ErrorPage{}, false
}

// logFailure logs a 5xx with the request id: its detail goes nowhere else.
func logFailure(r *http.Request, log *slog.Logger, body ErrorBody, err error) {
	if body.Status >= 500 && log != nil {
		log.ErrorContext(r.Context(), "request failed", "request_id", RequestID(r.Context()),
			"route", r.Pattern, "err", err)
	}
}
