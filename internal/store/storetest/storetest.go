package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// Run runs the conformance suite against the backend that newStore opens.
//
// newStore must return a fresh, empty, migrated store that nothing else uses, and arrange with
// t.Cleanup to close it when t ends. The suite calls it once per area (the cases of an area
// share that store and work in their own projects) and once more for each case that needs a
// whole database to itself, such as ListProjects and ClaimBootstrap.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Helper()
	areas := []struct {
		name string
		run  func(t *testing.T, newStore func(t *testing.T) store.Store)
	}{
		{"Projects", testProjects},
		{"ProjectSecrets", testProjectSecrets},
		{"Users", testUsers},
		{"Organizations", testOrganizations},
		{"Memberships", testMemberships},
		{"Roles", testRoles},
		{"Permissions", testPermissions},
		{"LoginLogs", testLoginLogs},
		{"OneTimeSecrets", testOneTimeSecrets},
		{"Sessions", testSessions},
		{"RefreshTokens", testRefreshTokens},
		{"SigningKeys", testSigningKeys},
		{"AuditEvents", testAuditEvents},
		{"Webhooks", testWebhooks},
		{"Flows", testFlows},
		{"Outbox", testOutbox},
		{"MessageTemplates", testMessageTemplates},
		{"Passkeys", testPasskeys},
		{"Ceremonies", testCeremonies},
		{"MFAFactors", testMFAFactors},
		{"RecoveryCodes", testRecoveryCodes},
		{"MFAChallenges", testMFAChallenges},
		{"Counters", testCounters},
		{"Passwords", testPasswords},
		{"SpentChallenges", testSpentChallenges},
		{"OIDCRequests", testOIDCRequests},
		{"GarbageCollect", testGarbageCollect},
		{"KeyCheck", testKeyCheck},
		{"Paging", testPaging},
		{"Isolation", testIsolation},
		{"Races", testRaces},
		{"LockProject", testLockProject},
		{"InTx", testInTx},
	}
	for _, a := range areas {
		t.Run(a.name, func(t *testing.T) {
			t.Parallel()
			a.run(t, newStore)
		})
	}
}

// ids makes record ids the way the server does.
var ids = ident.NewGenerator()

// newID returns a fresh id.
func newID() string { return ids.New() }

// shiftedIDs returns a generator whose ids carry a time prefix d away from now, so that they
// sort before (d < 0) or after (d > 0) every id made by ids during the test.
func shiftedIDs(d time.Duration) *ident.Generator {
	return &ident.Generator{Now: func() time.Time { return time.Now().Add(d) }, Rand: rand.Reader}
}

// sortedIDs returns n fresh ids in ascending order. Ids made within one second are in random
// order, so cases that need creation order to agree with id order take ids from here.
func sortedIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = newID()
	}
	sort.Strings(out)
	return out
}

// now returns the current time as the store keeps it: UTC, microsecond precision.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// at returns a fixed UTC time with a non-zero microsecond part, offset by d.
func at(d time.Duration) time.Time {
	return time.Date(2024, time.March, 14, 15, 9, 26, 535897000, time.UTC).Add(d)
}

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }

// randomHash returns the SHA-256 of 32 random bytes, like the hash of a fresh secret.
func randomHash() []byte {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	h := sha256.Sum256(b[:])
	return h[:]
}

var phoneSeq atomic.Int64

// uniquePhone returns an E.164 number no other call returns.
func uniquePhone() string { return fmt.Sprintf("+1555%07d", phoneSeq.Add(1)) }

// fixture creates records in one project of one store and fails the test on any error.
type fixture struct {
	t   *testing.T
	ctx context.Context
	st  store.Store
	pid string // the project the records go into
}

// inNewProject creates a project in st and returns a fixture bound to it.
func inNewProject(t *testing.T, st store.Store) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: t.Context(), st: st}
	f.pid = f.project().ID
	return f
}

// project creates a new project (not the fixture's) and returns it.
func (f *fixture) project() store.Project {
	f.t.Helper()
	id := newID()
	p := store.Project{
		ID:        id,
		ClientID:  "cli_" + id,
		Name:      "Project " + id,
		Settings:  []byte(`{"allowed_origins":["https://app.example.com"],"rp_id":"example.com"}`),
		CreatedAt: at(0),
		UpdatedAt: at(time.Minute),
	}
	must(f.t, f.st.CreateProject(f.ctx, p), "CreateProject")
	return p
}

// newUser returns an unsaved user of the fixture's project with a unique email and phone.
func (f *fixture) newUser() store.User {
	id := newID()
	return store.User{
		ID:             id,
		ProjectID:      f.pid,
		Email:          "user-" + id + "@example.com",
		Phone:          uniquePhone(),
		FirstName:      "Ada",
		LastName:       "Lovelace",
		EmailVerified:  true,
		Active:         true,
		ConnectionType: "ManualUser",
		CreatedAt:      at(0),
		UpdatedAt:      at(0),
	}
}

// user creates a user; mods adjust it before it is saved.
func (f *fixture) user(mods ...func(*store.User)) store.User {
	f.t.Helper()
	u := f.newUser()
	for _, m := range mods {
		m(&u)
	}
	must(f.t, f.st.CreateUser(f.ctx, u), "CreateUser(%s)", u.ID)
	return u
}

// org creates an organization; mods adjust it before it is saved.
func (f *fixture) org(mods ...func(*store.Organization)) store.Organization {
	f.t.Helper()
	id := newID()
	o := store.Organization{
		ID:            id,
		ProjectID:     f.pid,
		Name:          "Org " + id,
		Domain:        id + ".example.com",
		WorkspaceName: "ws-" + id,
		Active:        true,
		CreatedAt:     at(0),
		UpdatedAt:     at(0),
	}
	for _, m := range mods {
		m(&o)
	}
	must(f.t, f.st.CreateOrganization(f.ctx, o), "CreateOrganization(%s)", o.ID)
	return o
}

// perm creates a permission.
func (f *fixture) perm() store.Permission {
	f.t.Helper()
	id := newID()
	p := store.Permission{
		ID:          id,
		ProjectID:   f.pid,
		Name:        "Permission " + id,
		Slug:        "perm-" + id,
		Description: "may do " + id,
		CreatedAt:   at(0),
		UpdatedAt:   at(0),
	}
	must(f.t, f.st.CreatePermission(f.ctx, p), "CreatePermission(%s)", p.ID)
	return p
}

// role creates a role holding the given permissions.
func (f *fixture) role(permIDs ...string) store.Role {
	f.t.Helper()
	id := newID()
	r := store.Role{
		ID:            id,
		ProjectID:     f.pid,
		Name:          "Role " + id,
		Slug:          "role-" + id,
		Description:   "holds " + id,
		PermissionIDs: sortedCopy(permIDs),
		Active:        true,
		CreatedAt:     at(0),
		UpdatedAt:     at(0),
	}
	must(f.t, f.st.CreateRole(f.ctx, r), "CreateRole(%s)", r.ID)
	return r
}

// members adds the users to the organization.
func (f *fixture) members(orgID string, when time.Time, userIDs ...string) {
	f.t.Helper()
	must(f.t, f.st.AddMembers(f.ctx, f.pid, orgID, userIDs, when), "AddMembers(org %s, %v)", orgID, userIDs)
}

// membersOf returns every membership of the organization, reading pages of 1000.
func (f *fixture) membersOf(orgID string) []store.Membership {
	f.t.Helper()
	ms, err := f.st.ListMembers(f.ctx, f.pid, orgID, store.Page{Limit: 1000})
	must(f.t, err, "ListMembers(org %s)", orgID)
	return ms
}

// memberships returns the memberships of the users.
func (f *fixture) memberships(userIDs ...string) []store.Membership {
	f.t.Helper()
	ms, err := f.st.ListMemberships(f.ctx, f.pid, userIDs)
	must(f.t, err, "ListMemberships(%v)", userIDs)
	return ms
}

func sortedCopy(s []string) []string {
	if s == nil {
		return nil
	}
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

// must fails the test now if err is not nil.
func must(t *testing.T, err error, format string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: unexpected error: %v", fmt.Sprintf(format, args...), err)
	}
}

// wantErr reports an error unless err wraps want.
func wantErr(t *testing.T, err, want error, format string, args ...any) bool {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: err = %v, want an error wrapping %q", fmt.Sprintf(format, args...), err, want)
		return false
	}
	return true
}

// wantNotFound reports an error unless err wraps store.ErrNotFound.
func wantNotFound(t *testing.T, err error, format string, args ...any) bool {
	t.Helper()
	return wantErr(t, err, store.ErrNotFound, format, args...)
}

// wantConflict reports an error unless err wraps store.ErrConflict.
func wantConflict(t *testing.T, err error, format string, args ...any) bool {
	t.Helper()
	return wantErr(t, err, store.ErrConflict, format, args...)
}

// wantEqual reports every field in which got differs from want (see diff).
func wantEqual(t *testing.T, want, got any, format string, args ...any) {
	t.Helper()
	if d := diff(want, got); len(d) > 0 {
		t.Errorf("%s: record differs:\n\t%s", fmt.Sprintf(format, args...), strings.Join(d, "\n\t"))
	}
}

// wantIDs reports an error unless got lists exactly the ids want, in that order.
func wantIDs(t *testing.T, want, got []string, format string, args ...any) bool {
	t.Helper()
	if len(want) == 0 && len(got) == 0 {
		return true
	}
	if !reflect.DeepEqual(want, got) {
		t.Errorf("%s: ids = %q, want %q", fmt.Sprintf(format, args...), got, want)
		return false
	}
	return true
}

// sortByID sorts records by their ID field.
func sortByID[T any](rs []T) {
	sort.Slice(rs, func(i, j int) bool {
		return reflect.ValueOf(rs[i]).FieldByName("ID").String() < reflect.ValueOf(rs[j]).FieldByName("ID").String()
	})
}

// idsOf returns the ids of records, in order.
func idsOf[T any](rs []T) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = reflect.ValueOf(r).FieldByName("ID").String()
	}
	return out
}

// jsonFields names the []byte fields that hold a JSON document: they are compared by meaning,
// since a backend may store JSON in a normalised form (PostgreSQL jsonb does).
var jsonFields = map[string]bool{"Settings": true, "Payload": true}

// diff compares two records of the same type field by field and describes each difference.
// Times must be equal instants and, when set, in UTC; a nil slice or map equals an empty one.
func diff(want, got any) []string {
	var out []string
	diffValue(reflect.TypeOf(want).Name(), "", reflect.ValueOf(want), reflect.ValueOf(got), &out)
	return out
}

var timeType = reflect.TypeOf(time.Time{})

func diffValue(path, field string, w, g reflect.Value, out *[]string) {
	add := func(format string, args ...any) {
		*out = append(*out, path+": "+fmt.Sprintf(format, args...))
	}
	switch {
	case w.Type() == timeType:
		wt, gt := w.Interface().(time.Time), g.Interface().(time.Time)
		switch {
		case !gt.Equal(wt):
			add("got %s, want %s", fmtTime(gt), fmtTime(wt))
		case !gt.IsZero() && gt.Location() != time.UTC:
			add("got %s in location %q, want UTC", fmtTime(gt), gt.Location())
		}
	case w.Kind() == reflect.Pointer:
		switch {
		case w.IsNil() && g.IsNil():
		case w.IsNil():
			add("got %s, want nil", fmtAny(g.Elem()))
		case g.IsNil():
			add("got nil, want %s", fmtAny(w.Elem()))
		default:
			diffValue(path, field, w.Elem(), g.Elem(), out)
		}
	case w.Kind() == reflect.Struct:
		for i := 0; i < w.NumField(); i++ {
			f := w.Type().Field(i)
			if f.IsExported() {
				diffValue(path+"."+f.Name, f.Name, w.Field(i), g.Field(i), out)
			}
		}
	case w.Kind() == reflect.Slice && w.Type().Elem().Kind() == reflect.Uint8:
		wb, gb := w.Bytes(), g.Bytes()
		if jsonFields[field] {
			if !jsonEqual(wb, gb) {
				add("got JSON %s, want %s", gb, wb)
			}
		} else if !bytes.Equal(wb, gb) {
			add("got %x, want %x", gb, wb)
		}
	case (w.Kind() == reflect.Slice || w.Kind() == reflect.Map) && w.Len() == 0 && g.Len() == 0:
	default:
		if !reflect.DeepEqual(w.Interface(), g.Interface()) {
			add("got %s, want %s", fmtAny(g), fmtAny(w))
		}
	}
}

func fmtTime(t time.Time) string { return t.Format("2006-01-02T15:04:05.000000000Z07:00") }

func fmtAny(v reflect.Value) string {
	if v.Type() == timeType {
		return fmtTime(v.Interface().(time.Time))
	}
	return fmt.Sprintf("%#v", v.Interface())
}

// jsonEqual reports whether a and b are the same JSON document; empty equals empty.
func jsonEqual(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var av, bv any
	if json.Unmarshal(a, &av) != nil || json.Unmarshal(b, &bv) != nil {
		return bytes.Equal(a, b)
	}
	return reflect.DeepEqual(av, bv)
}

// wantRecords reports an error unless got holds exactly the records want, in that order.
func wantRecords[T any](t *testing.T, want, got []T, format string, args ...any) {
	t.Helper()
	op := fmt.Sprintf(format, args...)
	if !wantIDs(t, idsOf(want), idsOf(got), "%s", op) {
		return
	}
	for i := range want {
		wantEqual(t, want[i], got[i], "%s[%d]", op, i)
	}
}
