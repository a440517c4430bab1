package projecthttp_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/httpserver"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/project/projecthttp"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

type fixture struct {
	srv    *httptest.Server
	issued project.Issued
}

func setup(t *testing.T) fixture {
	t.Helper()
	svc := project.New(project.Deps{Store: testdb.SQLite(t)})
	issued, err := svc.Create(context.Background(), project.NewProject{Name: "Acme",
		AllowedOrigins: []string{"https://app.acme.example"}})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	rt := httpserver.NewRouter(svc, log)
	projecthttp.Handler{Projects: svc, PublicHost: "auth.acme.example"}.Mount(rt)
	srv := httptest.NewServer(httpserver.Wrap(rt, log, nil))
	t.Cleanup(srv.Close)
	return fixture{srv: srv, issued: issued}
}

// do sends a request and decodes the JSON answer into a generic map.
func (f fixture) do(t *testing.T, method, path, body string, header map[string]string) (int, map[string]any, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s %s: body is not a JSON object: %s", method, path, raw)
	}
	return resp.StatusCode, m, string(raw)
}

func (f fixture) secret() map[string]string {
	return map[string]string{"x-client-secret": f.issued.ClientSecret}
}

func TestGetProject(t *testing.T) {
	f := setup(t)
	for _, h := range []map[string]string{
		f.secret(),
		{"Authorization": "Bearer " + f.issued.ClientSecret},
	} {
		status, doc, raw := f.do(t, "GET", "/api/v1/project", "", h)
		if status != http.StatusOK {
			t.Fatalf("status %d: %s", status, raw)
		}
		for _, k := range []string{"id", "client_id", "name", "settings", "secrets", "created_at", "modified_at"} {
			if _, ok := doc[k]; !ok {
				t.Errorf("project document lacks %q: %s", k, raw)
			}
		}
		if doc["client_id"] != f.issued.Project.ClientID || doc["name"] != "Acme" {
			t.Errorf("document %s", raw)
		}
		secrets := doc["secrets"].([]any)
		if len(secrets) != 1 || secrets[0].(map[string]any)["hint"] != f.issued.Secret.Hint ||
			secrets[0].(map[string]any)["expires_at"] != nil {
			t.Errorf("secrets %v", secrets)
		}
		if strings.Contains(raw, f.issued.ClientSecret) || strings.Contains(raw, "hash") {
			t.Errorf("the project document reveals a secret: %s", raw)
		}
	}

	status, doc, _ := f.do(t, "GET", "/api/v1/project", "", nil)
	if status != http.StatusUnauthorized || doc["error_code"] != "missing_credentials" {
		t.Errorf("without a secret: %d %v", status, doc)
	}
	status, doc, _ = f.do(t, "GET", "/api/v1/project", "", map[string]string{"x-client-secret": "sk_nope"})
	if status != http.StatusUnauthorized || doc["error_code"] != "invalid_client" {
		t.Errorf("wrong secret: %d %v", status, doc)
	}
}

func TestPatchProject(t *testing.T) {
	f := setup(t)
	status, doc, raw := f.do(t, "PATCH", "/api/v1/project",
		`{"name":"Acme Inc","settings":{"tokens":{"signing_algorithm":"ES256"},"branding":{"display_name":"Acme!"}}}`, f.secret())
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, raw)
	}
	settings := doc["settings"].(map[string]any)
	if doc["name"] != "Acme Inc" || settings["tokens"].(map[string]any)["signing_algorithm"] != "ES256" ||
		settings["tokens"].(map[string]any)["access_token_ttl_seconds"] != 900.0 {
		t.Errorf("patched document %s", raw)
	}

	// settings: null and an absent settings key leave the settings alone.
	status, _, raw = f.do(t, "PATCH", "/api/v1/project", `{"settings":null}`, f.secret())
	if status != http.StatusOK || !strings.Contains(raw, `"ES256"`) {
		t.Errorf("null settings: %d %s", status, raw)
	}

	cases := []struct{ body, field string }{
		{`{"settings":{"codes":{"length":12}}}`, "codes.length"},
		{`{"settings":{"login_method":{"password":true}}}`, "login_method"},
		{`{"settings":{"allowed_origins":["http://evil.example"]}}`, "allowed_origins[0]"},
		{`{"name":"Changed","settings":{"tokens":{"refresh_token_ttl_seconds":61}}}`, "tokens.refresh_token_ttl_seconds"},
	}
	for _, c := range cases {
		status, doc, raw := f.do(t, "PATCH", "/api/v1/project", c.body, f.secret())
		if status != http.StatusBadRequest || doc["error_code"] != "invalid_setting" || doc["field"] != c.field ||
			!strings.HasPrefix(doc["error_description"].(string), c.field+": ") {
			t.Errorf("PATCH %s: %d %s", c.body, status, raw)
		}
	}
	_, doc, _ = f.do(t, "GET", "/api/v1/project", "", f.secret())
	if doc["name"] != "Acme Inc" {
		t.Errorf("a refused PATCH changed the name to %v", doc["name"])
	}

	status, doc, _ = f.do(t, "PATCH", "/api/v1/project", `{"name":5}`, f.secret())
	if status != http.StatusBadRequest || doc["error_code"] != "invalid_request" {
		t.Errorf("wrong type: %d %v", status, doc)
	}
}

func TestPublicConfig(t *testing.T) {
	f := setup(t)
	status, doc, raw := f.do(t, "GET", "/api/v1/config?client_id="+f.issued.Project.ClientID, "", nil)
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, raw)
	}
	for _, k := range []string{"client_id", "name", "display_name", "login_methods", "allow_signup",
		"allowed_origins", "branding", "social_providers", "passkey"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("config lacks %q: %s", k, raw)
		}
	}
	// The RP id defaults to the host of the first allowed origin (the server's host is the
	// fallback for a project without origins).
	if doc["display_name"] != "Acme" || doc["passkey"].(map[string]any)["rp_id"] != "app.acme.example" ||
		doc["login_methods"].(map[string]any)["passkey"] != true {
		t.Errorf("config %s", raw)
	}
	origins := doc["allowed_origins"].([]any)
	if !slices.Equal(origins, []any{"https://app.acme.example"}) {
		t.Errorf("allowed_origins %v", origins)
	}
	if strings.Contains(raw, "sk_") || strings.Contains(raw, "secret") {
		t.Errorf("public config reveals secret material: %s", raw)
	}

	status, doc, _ = f.do(t, "GET", "/api/v1/config", "", map[string]string{"x-client-id": f.issued.Project.ClientID})
	if status != http.StatusOK || doc["client_id"] != f.issued.Project.ClientID {
		t.Errorf("config by header: %d %v", status, doc)
	}
	status, doc, _ = f.do(t, "GET", "/api/v1/config", "", nil)
	if status != http.StatusBadRequest || doc["error_code"] != "missing_client_id" {
		t.Errorf("config without a client id: %d %v", status, doc)
	}
	status, doc, _ = f.do(t, "GET", "/api/v1/config?client_id=cli_000000000000000000000000", "", nil)
	if status != http.StatusUnauthorized || doc["error_code"] != "invalid_client" {
		t.Errorf("config of an unknown client: %d %v", status, doc)
	}
}

// TestPublicConfigPasskeyRPID checks that the config shows the effective RP id: the setting,
// else the first allowed origin's host, else the server's host.
func TestPublicConfigPasskeyRPID(t *testing.T) {
	f := setup(t)
	for _, c := range []struct{ patch, want string }{
		{`{"settings":{"passkey":{"rp_id":"Acme.Example"}}}`, "acme.example"},
		{`{"settings":{"passkey":{"rp_id":null},"allowed_origins":["https://shop.acme.example:8443","https://app.acme.example"]}}`, "shop.acme.example"},
		{`{"settings":{"allowed_origins":[]}}`, "auth.acme.example"},
	} {
		if status, doc, raw := f.do(t, "PATCH", "/api/v1/project", c.patch, f.secret()); status != http.StatusOK {
			t.Fatalf("PATCH %s = %d %v %s", c.patch, status, doc, raw)
		}
		status, doc, raw := f.do(t, "GET", "/api/v1/config?client_id="+f.issued.Project.ClientID, "", nil)
		if status != http.StatusOK {
			t.Fatalf("config: %d %s", status, raw)
		}
		if got := doc["passkey"].(map[string]any)["rp_id"]; got != c.want {
			t.Errorf("after %s: passkey.rp_id = %v, want %s", c.patch, got, c.want)
		}
	}
	status, doc, _ := f.do(t, "PATCH", "/api/v1/project", `{"settings":{"passkey":{"rp_id":"https://acme.example"}}}`, f.secret())
	if status != http.StatusBadRequest || doc["error_code"] != "invalid_setting" || doc["field"] != "passkey.rp_id" {
		t.Errorf("PATCH a URL as rp_id: %d %v", status, doc)
	}
}
