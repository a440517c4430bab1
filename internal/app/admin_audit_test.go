package app_test

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/passwordless"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
	"github.com/latchkey-dev/latchkey/internal/token"
)

const adminAgent = "admin-console/2.0"

// auditEvents returns the project's audit events of type typ ("" for all).
func (w *tokenWorld) auditEvents(typ string) []store.AuditEvent {
	w.t.Helper()
	es, err := w.a.Store().ListAuditEvents(w.t.Context(), w.proj.Project.ID, store.AuditFilter{Type: typ}, 100, "")
	if err != nil {
		w.t.Fatal(err)
	}
	return es
}

// adminEvents is auditEvents but for those of the test's setup, which acts as the CLI.
func (w *tokenWorld) adminEvents(typ string) []store.AuditEvent {
	w.t.Helper()
	return slices.DeleteFunc(w.auditEvents(typ), func(e store.AuditEvent) bool {
		a, _ := e.Detail["actor"].(map[string]any)
		return a["kind"] == audit.ActorCLI
	})
}

// wantAdminEvent checks that the change made one event of type typ, by the actor of kind and
// id, from this test's address and user agent, and returns it.
func (w *tokenWorld) wantAdminEvent(typ, kind, id string) store.AuditEvent {
	w.t.Helper()
	es := w.adminEvents(typ)
	if len(es) != 1 {
		w.t.Fatalf("%d %s events, want 1", len(es), typ)
	}
	e := es[0]
	a, _ := e.Detail["actor"].(map[string]any)
	if a["kind"] != kind || a["id"] != id || e.IPAddress != "127.0.0.1" || e.UserAgent != adminAgent {
		w.t.Errorf("%s: actor %v, ip %q, user agent %q; want %s %s from 127.0.0.1", typ, e.Detail["actor"],
			e.IPAddress, e.UserAgent, kind, id)
	}
	return e
}

// jti reads the jti claim of a JWT without checking it (the server checked it).
func jti(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		ID string `json:"jti"`
	}
	if err := json.Unmarshal(raw, &c); err != nil || c.ID == "" {
		t.Fatalf("claims %s: %v", raw, err)
	}
	return c.ID
}

// TestAdminChangesAreAudited makes changes through the management API, with the project secret
// and with a machine token, and checks each one's audit event: who made it, from where, about
// what; and that refused changes leave none.
func TestAdminChangesAreAudited(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newTokenWorld(t, st)
		clientID := w.proj.Project.ClientID
		asSecret := maps.Clone(w.secret())
		asSecret["User-Agent"] = adminAgent

		// Users, with the secret.
		r := w.call("POST", "/api/v1/users", `{"email":"bob@example.com"}`, asSecret)
		w.want(r, 201, "")
		bob, _ := r.body["id"].(string)
		if e := w.wantAdminEvent(directory.EventUserCreated, audit.ActorSecret, clientID); e.UserID != bob || bob == "" {
			t.Errorf("user.created names user %q, want %q", e.UserID, bob)
		}
		w.want(w.call("POST", "/api/v1/users", `{"email":"not an email"}`, asSecret), 400, "invalid_email")
		w.want(w.call("POST", "/api/v1/users", `{"email":"BOB@example.com"}`, asSecret), 409, "email_exists")
		if es := w.adminEvents(directory.EventUserCreated); len(es) != 1 {
			t.Errorf("refused creations wrote events: %d user.created", len(es))
		}
		w.want(w.call("PUT", "/api/v1/users/"+bob, `{"first_name":"Bob","is_active":false}`, asSecret), 200, "")
		w.wantAdminEvent(directory.EventUserUpdated, audit.ActorSecret, clientID)
		if e := w.wantAdminEvent(directory.EventUserDeactivated, audit.ActorSecret, clientID); e.UserID != bob {
			t.Errorf("user.deactivated names user %q", e.UserID)
		}

		// Organizations and roles, with a machine token.
		form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
		r = w.call("POST", "/api/v1/oauth2/token", "grant_type=client_credentials&client_id="+clientID+
			"&client_secret="+w.proj.ClientSecret, form)
		w.want(r, 200, "")
		machine, _ := r.body["access_token"].(string)
		asMachine := map[string]string{"Authorization": "Bearer " + machine, "User-Agent": adminAgent}
		r = w.call("POST", "/api/v1/organization", `{"name":"Acme"}`, asMachine)
		w.want(r, 201, "")
		org, _ := r.body["id"].(string)
		if e := w.wantAdminEvent(directory.EventOrgCreated, audit.ActorClientCredentials, jti(t, machine)); e.OrganizationID != org || org == "" {
			t.Errorf("organization.created names organization %q, want %q", e.OrganizationID, org)
		}
		w.want(w.call("POST", "/api/v1/organization/"+org+"/users", `{"user_ids":["`+bob+`"]}`, asMachine), 200, "")
		w.wantAdminEvent(directory.EventOrgMembersAdded, audit.ActorClientCredentials, jti(t, machine))
		w.want(w.call("POST", "/api/v1/roles", `{"name":"Billing"}`, asMachine), 201, "")
		w.wantAdminEvent(directory.EventRoleCreated, audit.ActorClientCredentials, jti(t, machine))
		w.want(w.call("POST", "/api/v1/roles", `{"name":"Billing"}`, asMachine), 409, "slug_exists")
		if es := w.adminEvents(directory.EventRoleCreated); len(es) != 1 {
			t.Errorf("a refused role wrote an event: %d role.created", len(es))
		}

		// Project settings: names of what changed, never values.
		w.want(w.call("PATCH", "/api/v1/project", `{"settings":{"codes":{"length":8}}}`, asSecret), 200, "")
		e := w.wantAdminEvent(project.EventSettingsUpdated, audit.ActorSecret, clientID)
		if got, _ := json.Marshal(e.Detail["changed"]); string(got) != `["settings.codes.length"]` {
			t.Errorf("changed = %s", got)
		}
		w.want(w.call("PATCH", "/api/v1/project", `{"settings":{"codes":{"length":3}}}`, asSecret), 400, "invalid_setting")
		if es := w.adminEvents(project.EventSettingsUpdated); len(es) != 1 {
			t.Errorf("a refused update wrote an event: %d", len(es))
		}

		// Templates.
		w.want(w.call("PUT", "/api/v1/templates/email_otp", `{"subject":"Code","text":"{{.code","html":""}`, asSecret), 400, "invalid_template")
		if es := w.adminEvents(passwordless.EventTemplateUpdated); len(es) != 0 {
			t.Errorf("a refused template wrote an event")
		}
		w.want(w.call("PUT", "/api/v1/templates/email_otp", `{"subject":"Your code","text":"Use {{.code}}.","html":""}`, asSecret), 200, "")
		if e := w.wantAdminEvent(passwordless.EventTemplateUpdated, audit.ActorSecret, clientID); e.Detail["template"] != "email_otp" {
			t.Errorf("template.updated detail %v", e.Detail)
		}
		w.want(w.call("DELETE", "/api/v1/templates/email_otp", "", asMachine), 200, "")
		w.wantAdminEvent(passwordless.EventTemplateReset, audit.ActorClientCredentials, jti(t, machine))

		// Deleting, last: the events outlive what they are about.
		w.want(w.call("DELETE", "/api/v1/organization/"+org, "", asMachine), 200, "")
		w.wantAdminEvent(directory.EventOrgDeleted, audit.ActorClientCredentials, jti(t, machine))
		w.want(w.call("DELETE", "/api/v1/users/"+bob, "", asSecret), 200, "")
		w.wantAdminEvent(directory.EventUserDeleted, audit.ActorSecret, clientID)

		// No event holds a credential.
		all := w.auditEvents("")
		raw, _ := json.Marshal(all)
		for _, secret := range []string{w.proj.ClientSecret, machine} {
			if strings.Contains(string(raw), secret) {
				t.Errorf("an audit event holds a credential")
			}
		}
	})
}

// TestKeyRotationIsAudited rotates a project's signing key as the CLI does and checks the event.
func TestKeyRotationIsAudited(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newTokenWorld(t, st)
		ctx := t.Context()
		first, err := w.a.Keys().Signer(ctx, w.proj.Project.ID, token.RS256)
		if err != nil {
			t.Fatal(err)
		}
		if es := w.auditEvents(token.EventSigningKeyRotated); len(es) != 0 {
			t.Fatalf("the first key, made on demand, wrote %d rotation events", len(es))
		}
		ops := audit.Actor{Kind: audit.ActorCLI, ID: "ops"}
		k, err := w.a.Keys().Rotate(ctx, ops, w.proj.Project.ID, token.ES256, 0)
		if err != nil {
			t.Fatal(err)
		}
		es := w.auditEvents(token.EventSigningKeyRotated)
		if len(es) != 1 {
			t.Fatalf("%d rotation events, want 1", len(es))
		}
		e := es[0]
		a, _ := e.Detail["actor"].(map[string]any)
		retired, _ := json.Marshal(e.Detail["retired_kids"])
		if a["kind"] != audit.ActorCLI || a["id"] != "ops" || e.Detail["kid"] != k.ID || e.Detail["algorithm"] != "ES256" ||
			string(retired) != `["`+first.ID+`"]` {
			t.Errorf("signing_key.rotated = %+v", e)
		}
		raw, _ := json.Marshal(e)
		if strings.Contains(string(raw), "PRIVATE") || strings.Contains(string(raw), `"d"`) {
			t.Errorf("the event holds key material: %s", raw)
		}
	})
}
