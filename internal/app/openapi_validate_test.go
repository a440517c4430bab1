package app_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/latchkey-dev/latchkey/docs"
)

// The scenario tests talk to the server through their httptest.Server's client. Its transport
// is wrapped so that every exchange is checked against docs/openapi.json as it happens: the
// route and method are documented, the status is one the operation lists, the response has a
// documented content type and its body matches that schema, and a request the server accepted
// matches the document's parameters and request body. A mismatch fails the request, so the
// test that sent it fails with the reason; the document cannot drift from the server unseen.

var openAPIRouter = sync.OnceValues(func() (routers.Router, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(docs.OpenAPI)
	if err != nil {
		return nil, fmt.Errorf("load docs/openapi.json: %w", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("validate docs/openapi.json: %w", err)
	}
	// The test servers listen on random ports, not on the document's example server.
	doc.Servers = nil
	// The decoders kin-openapi lacks for the media types the document uses: the pages and
	// the script are text, the QR code is an image, and a JWK set is JSON.
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("text/javascript", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("image/png", openapi3filter.FileBodyDecoder)
	openapi3filter.RegisterBodyDecoder("application/jwk-set+json", openapi3filter.JSONBodyDecoder)
	return legacy.NewRouter(doc)
})

// checkAgainstOpenAPI makes every request sent with srv.Client() be checked against
// docs/openapi.json. Call it once, right after the server starts.
func checkAgainstOpenAPI(t testing.TB, srv *httptest.Server) {
	c := srv.Client()
	next := c.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	c.Transport = openAPITransport{next: next}
	checkedClients.Store(srv.URL, c)
	// A later server may get the same port: it must not inherit the check.
	t.Cleanup(func() { checkedClients.Delete(srv.URL) })
}

// checkedClients maps the URL of each server checkAgainstOpenAPI was called on to its client.
var checkedClients sync.Map

// clientFor returns the checking client of the server that url is on, for helpers that take
// a URL rather than a server; other URLs (the admin listener, which the document does not
// describe) get http.DefaultClient.
func clientFor(url string) *http.Client {
	var found *http.Client
	checkedClients.Range(func(k, v any) bool {
		if base := k.(string); url == base || strings.HasPrefix(url, base+"/") {
			found = v.(*http.Client)
			return false
		}
		return true
	})
	if found == nil {
		return http.DefaultClient
	}
	return found
}

// openAPITransport checks each exchange, redirects included, since the client follows them.
type openAPITransport struct {
	next http.RoundTripper
}

func (t openAPITransport) RoundTrip(req *http.Request) (*http.Response, error) {
	router, err := openAPIRouter()
	if err != nil {
		return nil, err
	}
	var reqBody []byte
	if req.Body != nil {
		if reqBody, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	respBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	if err := checkExchange(router, req, reqBody, resp, respBody); err != nil {
		return nil, fmt.Errorf("docs/openapi.json does not describe %s %s → %d: %w\nresponse body: %.2000s",
			req.Method, req.URL.RequestURI(), resp.StatusCode, err, respBody)
	}
	return resp, nil
}

// refusedForm are the statuses with which the server refuses a request for its own form (bad
// JSON, a wrong type, an id that is not an id, too large): tests send such requests on purpose,
// so only the answer is checked against the document, not the request.
var refusedForm = map[int]bool{
	http.StatusBadRequest: true, http.StatusNotFound: true, http.StatusMethodNotAllowed: true,
	http.StatusRequestEntityTooLarge: true, http.StatusUnsupportedMediaType: true,
	http.StatusUnprocessableEntity: true,
}

func checkExchange(router routers.Router, req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) error {
	if strings.HasPrefix(req.URL.Path, "/dev/") {
		// The development inbox is served only in dev mode, for people trying the server; it is
		// not part of the API the document describes.
		return nil
	}
	probe := req.Clone(context.Background())
	probe.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, pathParams, err := router.FindRoute(probe)
	if err != nil {
		// Unknown routes and methods answer in the error shape; the router's tests pin that.
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
			return nil
		}
		// The router answers OPTIONS (CORS preflights) on every documented path itself; the
		// document lists the operations, which TestOpenAPICoversEveryRoute matches to routes.
		// (The legacy router returns a copy of ErrMethodNotAllowed, not the value itself.)
		var re *routers.RouteError
		if req.Method == http.MethodOptions && errors.As(err, &re) && re.Reason == routers.ErrMethodNotAllowed.Error() {
			return nil
		}
		return fmt.Errorf("no such operation: %w", err)
	}
	if len(reqBody) > 0 && probe.Header.Get("Content-Type") == "" && takesJSON(route.Operation) {
		// The server reads a JSON body whatever its Content-Type says, as SSOJet does, and many
		// tests send none: check the body as the JSON it is read as.
		probe.Header.Set("Content-Type", "application/json")
	}
	in := &openapi3filter.RequestValidationInput{
		Request:    probe,
		PathParams: pathParams,
		Route:      route,
		Options: &openapi3filter.Options{
			AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
			IncludeResponseStatus: true,
			MultiError:            true,
		},
	}
	if !refusedForm[resp.StatusCode] {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			return fmt.Errorf("request: %w", err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Options:                in.Options,
	}
	out.SetBodyBytes(respBody)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		return fmt.Errorf("response: %w", err)
	}
	// kin-openapi accepts any body where the document lists no content; a body the document
	// does not mention is drift all the same.
	documented := route.Operation.Responses.Status(resp.StatusCode)
	if documented == nil {
		documented = route.Operation.Responses.Default()
	}
	if documented != nil && documented.Value != nil && len(documented.Value.Content) == 0 &&
		len(bytes.TrimSpace(respBody)) > 0 && req.Method != http.MethodHead {
		return errors.New("response: a " + strings.TrimSpace(resp.Header.Get("Content-Type")) + " body where the document lists none")
	}
	return nil
}

// takesJSON tells whether the operation documents a JSON request body.
func takesJSON(op *openapi3.Operation) bool {
	return op.RequestBody != nil && op.RequestBody.Value != nil && op.RequestBody.Value.Content.Get("application/json") != nil
}

// TestOpenAPICheckCatchesDrift pins the check itself: against a server that answers as the
// document does not say, each kind of drift fails the request, and a faithful answer passes.
func TestOpenAPICheckCatchesDrift(t *testing.T) {
	answer := map[string]func(w http.ResponseWriter){
		"/healthz": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"status":"ok"}`)
		},
		"/healthz?drift=status": func(w http.ResponseWriter) { w.WriteHeader(http.StatusTeapot) },
		"/healthz?drift=body": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"status":1}`)
		},
		"/healthz?drift=type": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "ok")
		},
		"/undocumented": func(w http.ResponseWriter) { w.WriteHeader(http.StatusOK) },
		"/api/v1/users": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"id":"6b130bbd8e8fbea92773b808","email":"ada@example.com"}`)
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		answer[r.URL.RequestURI()](w)
	}))
	t.Cleanup(srv.Close)
	checkAgainstOpenAPI(t, srv)

	for _, c := range []struct {
		method, path, body, drift string
	}{
		{"GET", "/healthz", "", ""},
		{"GET", "/healthz?drift=status", "", "status is not supported"},
		{"GET", "/healthz?drift=body", "", "doesn't match schema"},
		{"GET", "/healthz?drift=type", "", "Content-Type"},
		{"GET", "/undocumented", "", "no such operation"},
		{"POST", "/api/v1/users", `{"email":"ada@example.com"}`, ""},
		{"POST", "/api/v1/users", `{"email":5}`, "request body has an error"},
	} {
		var body io.Reader
		if c.body != "" {
			body = strings.NewReader(c.body)
		}
		req, err := http.NewRequest(c.method, srv.URL+c.path, body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Client-Secret", "sk_test")
		resp, err := srv.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		switch {
		case c.drift == "" && err != nil:
			t.Errorf("%s %s %s: refused an exchange the document describes: %v", c.method, c.path, c.body, err)
		case c.drift != "" && (err == nil || !strings.Contains(err.Error(), c.drift)):
			t.Errorf("%s %s %s: err = %v, want one saying %q", c.method, c.path, c.body, err, c.drift)
		}
	}
}
