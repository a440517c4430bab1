package storetest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

func testUsers(t *testing.T, newStore func(t *testing.T) store.Store) {
	st := newStore(t)

	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		never := f.newUser()
		never.PhoneVerified = false
		never.Groups = []string{"engineering"}
		never.RawAttributes = map[string]any{"plan": "free"}

		full := f.newUser()
		full.FirstName, full.LastName = "Grace", "Hopper"
		full.EmailVerified, full.PhoneVerified, full.Active = false, true, false
		full.ConnectionType = "MagicLink"
		full.Groups = []string{"admins", "engineering", "on-call"}
		full.RawAttributes = map[string]any{
			"department": "R&D",
			"level":      float64(7),
			"remote":     true,
			"manager":    nil,
			"tags":       []any{"a", "b", float64(3)},
			"address": map[string]any{
				"city":   "Zürich",
				"zip":    "8001",
				"coords": []any{47.37, 8.54},
				"extra":  map[string]any{"floor": float64(4), "desk": []any{}},
			},
		}
		full.CreatedAt = at(-48 * time.Hour)
		full.UpdatedAt = at(-time.Hour + 17*time.Microsecond)
		full.LastLoginAt = ptr(at(-2*time.Minute + 999999*time.Microsecond))

		for _, u := range []store.User{never, full} {
			must(t, st.CreateUser(f.ctx, u), "CreateUser(%s)", u.ID)
		}
		for _, u := range []store.User{never, full} {
			got, err := st.GetUser(f.ctx, f.pid, u.ID)
			must(t, err, "GetUser(%s)", u.ID)
			wantEqual(t, u, got, "GetUser(%s)", u.ID)
			got, err = st.GetUserByEmail(f.ctx, f.pid, u.Email)
			must(t, err, "GetUserByEmail(%s)", u.Email)
			wantEqual(t, u, got, "GetUserByEmail(%s)", u.Email)
		}
		list, err := st.ListUsers(f.ctx, f.pid, store.UserFilter{}, store.Page{Limit: 10})
		must(t, err, "ListUsers")
		want := []store.User{never, full}
		sortByID(want)
		wantRecords(t, want, list, "ListUsers")
	})

	t.Run("NoEmailNoPhone", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		var want []store.User
		for range 3 {
			want = append(want, f.user(func(u *store.User) {
				u.Email, u.Phone, u.EmailVerified = "", "", false
				u.Groups, u.RawAttributes = nil, nil
			}))
		}
		for _, u := range want {
			got, err := st.GetUser(f.ctx, f.pid, u.ID)
			must(t, err, "GetUser(%s)", u.ID)
			wantEqual(t, u, got, "GetUser of a user with no email, phone, groups or attributes")
		}
		_, err := st.GetUserByEmail(f.ctx, f.pid, "")
		wantNotFound(t, err, `GetUserByEmail("") while users without an email exist ("" means no email)`)

		// Clearing the email and phone of a fourth user must not collide with the three.
		u := f.user()
		u.Email, u.Phone = "", ""
		must(t, st.UpdateUser(f.ctx, u), "UpdateUser clearing email and phone")
		want = append(want, u)
		sortByID(want)
		list, err := st.ListUsers(f.ctx, f.pid, store.UserFilter{}, store.Page{Limit: 10})
		must(t, err, "ListUsers")
		wantRecords(t, want, list, "ListUsers of users without email or phone")
	})

	t.Run("Unknown", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		f.user()
		id := newID()
		_, err := st.GetUser(f.ctx, f.pid, id)
		wantNotFound(t, err, "GetUser(unknown id)")
		_, err = st.GetUserByEmail(f.ctx, f.pid, "nobody-"+id+"@example.com")
		wantNotFound(t, err, "GetUserByEmail(unknown email)")
		u := f.newUser()
		wantNotFound(t, st.UpdateUser(f.ctx, u), "UpdateUser(unknown id)")
		_, err = st.GetUser(f.ctx, f.pid, u.ID)
		wantNotFound(t, err, "GetUser after UpdateUser(unknown id): UpdateUser must not create")
		wantNotFound(t, st.DeleteUser(f.ctx, f.pid, id), "DeleteUser(unknown id)")
	})

	t.Run("Update", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		orig := f.user(func(u *store.User) {
			u.Groups = []string{"a", "b"}
			u.RawAttributes = map[string]any{"x": float64(1), "nested": map[string]any{"y": "z"}}
			u.LastLoginAt = ptr(at(time.Minute))
		})
		upd := f.newUser() // every field different
		upd.ID, upd.ProjectID = orig.ID, orig.ProjectID
		upd.FirstName, upd.LastName = "Katherine", "Johnson"
		upd.EmailVerified, upd.PhoneVerified, upd.Active = false, true, false
		upd.ConnectionType = "Saml"
		upd.Groups = []string{"c"}
		upd.RawAttributes = map[string]any{"nested": map[string]any{"w": []any{true}}}
		upd.CreatedAt = at(-time.Hour) // must be ignored
		upd.UpdatedAt = at(time.Hour)
		upd.LastLoginAt = nil
		must(t, st.UpdateUser(f.ctx, upd), "UpdateUser")

		want := upd
		want.CreatedAt = orig.CreatedAt
		got, err := st.GetUser(f.ctx, f.pid, orig.ID)
		must(t, err, "GetUser")
		wantEqual(t, want, got, "GetUser after UpdateUser (every field but id, project and created_at replaced)")
		_, err = st.GetUserByEmail(f.ctx, f.pid, orig.Email)
		wantNotFound(t, err, "GetUserByEmail(old email) after the email changed")

		upd.LastLoginAt = ptr(at(2 * time.Hour))
		upd.Groups, upd.RawAttributes = nil, nil
		upd.Email = ""
		must(t, st.UpdateUser(f.ctx, upd), "UpdateUser setting LastLoginAt and clearing email, groups, attributes")
		want = upd
		want.CreatedAt = orig.CreatedAt
		got, err = st.GetUser(f.ctx, f.pid, orig.ID)
		must(t, err, "GetUser")
		wantEqual(t, want, got, "GetUser after the second UpdateUser")
	})

	t.Run("DuplicateEmailOrPhone", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		a := f.user()
		b := f.user()

		dupEmail := f.newUser()
		dupEmail.Email = a.Email
		wantConflict(t, st.CreateUser(f.ctx, dupEmail), "CreateUser with an email already in the project")
		dupPhone := f.newUser()
		dupPhone.Phone = a.Phone
		wantConflict(t, st.CreateUser(f.ctx, dupPhone), "CreateUser with a phone already in the project")
		for _, u := range []store.User{dupEmail, dupPhone} {
			_, err := st.GetUser(f.ctx, f.pid, u.ID)
			wantNotFound(t, err, "GetUser of a user refused with ErrConflict")
		}

		upd := b
		upd.Email = a.Email
		wantConflict(t, st.UpdateUser(f.ctx, upd), "UpdateUser to another user's email")
		upd = b
		upd.Phone = a.Phone
		wantConflict(t, st.UpdateUser(f.ctx, upd), "UpdateUser to another user's phone")
		got, err := st.GetUser(f.ctx, f.pid, b.ID)
		must(t, err, "GetUser")
		wantEqual(t, b, got, "user after the refused updates")

		list, err := st.ListUsers(f.ctx, f.pid, store.UserFilter{Email: a.Email}, store.Page{Limit: 10})
		must(t, err, "ListUsers by email")
		wantIDs(t, []string{a.ID}, idsOf(list), "ListUsers(email of a) after the refused duplicates")
	})

	t.Run("EmailCaseInsensitive", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		a := f.user(func(u *store.User) { u.Email = "Ann.Lee-" + newID() + "@example.com" })
		upper := strings.ToUpper(a.Email)

		got, err := st.GetUserByEmail(f.ctx, f.pid, upper)
		must(t, err, "GetUserByEmail in another case")
		wantEqual(t, a, got, "GetUserByEmail in another case (the address keeps its spelling)")
		list, err := st.ListUsers(f.ctx, f.pid, store.UserFilter{Email: upper}, store.Page{Limit: 10})
		must(t, err, "ListUsers(email filter in another case)")
		wantIDs(t, []string{a.ID}, idsOf(list), "ListUsers filtered by the email in another case")

		dup := f.newUser()
		dup.Email = strings.ToLower(a.Email)
		wantConflict(t, st.CreateUser(f.ctx, dup), "CreateUser with an email that differs only in case")
		b := f.user()
		b.Email = upper
		wantConflict(t, st.UpdateUser(f.ctx, b), "UpdateUser to an email that differs only in case")

		// A user may change the case of their own address.
		a.Email = strings.ToLower(a.Email)
		must(t, st.UpdateUser(f.ctx, a), "UpdateUser to the same email in another case")
		got, err = st.GetUser(f.ctx, f.pid, a.ID)
		must(t, err, "GetUser")
		wantEqual(t, a, got, "user after changing the case of their email")
	})

	t.Run("EmailLookalikesAreOtherAddresses", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		kim := f.user(func(u *store.User) { u.Email = "kim@acme.example" })
		f.user(func(u *store.User) { u.Email = "bill@acme.example" })
		jan := f.user(func(u *store.User) { u.Email = "jan@xn--bcher-kva.example" })
		// Unicode look-alikes of the local part find nobody, and are free to be other accounts.
		for _, addr := range []string{"\u212aim@acme.example", "b\u0130ll@acme.example", "B\u0130LL@acme.example",
			"\u0138im@acme.example", "\uff4bim@acme.example", "k\u0456m@acme.example"} {
			if _, err := st.GetUserByEmail(f.ctx, f.pid, addr); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetUserByEmail(%q) = %v, want ErrNotFound: a look-alike must not find kim or bill", addr, err)
			}
			list, err := st.ListUsers(f.ctx, f.pid, store.UserFilter{Email: addr}, store.Page{Limit: 10})
			must(t, err, "ListUsers(email filter %q)", addr)
			wantIDs(t, nil, idsOf(list), "ListUsers filtered by the look-alike %q", addr)
		}
		// The same mailbox: ASCII case, the IDNA forms of the domain, a trailing dot.
		for addr, want := range map[string]store.User{"KIM@Acme.Example": kim, "kim@acme.example.": kim,
			"jan@B\u00dcCHER.example": jan, "jan@bu\u0308cher.example": jan, "JAN@xn--bcher-kva.example.": jan} {
			got, err := st.GetUserByEmail(f.ctx, f.pid, addr)
			must(t, err, "GetUserByEmail(%q)", addr)
			wantEqual(t, want, got, "GetUserByEmail(%q)", addr)
		}
		other := f.newUser()
		other.Email = "\u212aim@acme.example"
		must(t, st.CreateUser(f.ctx, other), "CreateUser with a KELVIN SIGN look-alike of kim")
		got, err := st.GetUserByEmail(f.ctx, f.pid, "kim@acme.example")
		must(t, err, "GetUserByEmail(kim)")
		wantEqual(t, kim, got, "kim after the look-alike was created")
	})

	t.Run("RecordLogin", func(t *testing.T) {
		t.Parallel()
		f, g := inNewProject(t, st), inNewProject(t, st)
		u := f.user()
		when := at(time.Hour)
		must(t, st.RecordLogin(f.ctx, f.pid, u.ID, when, "EmailOTP"), "RecordLogin")
		u.LastLoginAt, u.ConnectionType = ptr(when), "EmailOTP"
		got, err := st.GetUser(f.ctx, f.pid, u.ID)
		must(t, err, "GetUser")
		wantEqual(t, u, got, "user after RecordLogin (only the login fields change)")
		wantNotFound(t, st.RecordLogin(f.ctx, g.pid, u.ID, when, "EmailOTP"), "RecordLogin through another project")
		wantNotFound(t, st.RecordLogin(f.ctx, f.pid, newID(), when, "EmailOTP"), "RecordLogin of an unknown user")
	})

	t.Run("SameEmailOtherProject", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		g := inNewProject(t, st)
		a := f.user()
		b := g.user(func(u *store.User) { u.Email, u.Phone = a.Email, a.Phone })
		for _, c := range []struct {
			fx *fixture
			u  store.User
		}{{f, a}, {g, b}} {
			got, err := st.GetUserByEmail(f.ctx, c.fx.pid, a.Email)
			must(t, err, "GetUserByEmail in project %s", c.fx.pid)
			wantEqual(t, c.u, got, "GetUserByEmail of an email used in two projects")
		}
	})

	t.Run("ListFilter", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		var all []store.User
		for range 5 {
			all = append(all, f.user())
		}
		sortByID(all)
		got, err := st.ListUsers(f.ctx, f.pid, store.UserFilter{Email: all[2].Email}, store.Page{Limit: 10})
		must(t, err, "ListUsers(email filter)")
		wantRecords(t, all[2:3], got, "ListUsers filtered by email")
		got, err = st.ListUsers(f.ctx, f.pid, store.UserFilter{Phone: all[1].Phone}, store.Page{Limit: 10})
		must(t, err, "ListUsers(phone filter)")
		wantRecords(t, all[1:2], got, "ListUsers filtered by phone")
		got, err = st.ListUsers(f.ctx, f.pid, store.UserFilter{Email: "none-" + newID() + "@example.com"}, store.Page{Limit: 10})
		must(t, err, "ListUsers(unmatched email)")
		wantIDs(t, nil, idsOf(got), "ListUsers filtered by an email nobody has")
		got, err = st.ListUsers(f.ctx, f.pid, store.UserFilter{Email: all[3].Email}, store.Page{Limit: 10, After: all[3].ID})
		must(t, err, "ListUsers(email filter, after the match)")
		wantIDs(t, nil, idsOf(got), "ListUsers filtered by email with After = the match's id")
	})

	t.Run("Delete", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		u := f.user()
		keep := f.user()
		must(t, st.DeleteUser(f.ctx, f.pid, u.ID), "DeleteUser")
		_, err := st.GetUser(f.ctx, f.pid, u.ID)
		wantNotFound(t, err, "GetUser after DeleteUser")
		_, err = st.GetUserByEmail(f.ctx, f.pid, u.Email)
		wantNotFound(t, err, "GetUserByEmail after DeleteUser")
		wantNotFound(t, st.DeleteUser(f.ctx, f.pid, u.ID), "DeleteUser a second time")
		wantNotFound(t, st.UpdateUser(f.ctx, u), "UpdateUser after DeleteUser")
		if _, err := st.GetUser(f.ctx, f.pid, keep.ID); err != nil {
			t.Errorf("GetUser of another user after DeleteUser: %v", err)
		}
		// The email and phone are free again.
		again := f.newUser()
		again.Email, again.Phone = u.Email, u.Phone
		must(t, st.CreateUser(f.ctx, again), "CreateUser reusing a deleted user's email and phone")
	})

	t.Run("DeleteCascades", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		u := f.user()
		other := f.user()
		o1, o2 := f.org(), f.org()
		r := f.role()
		f.members(o1.ID, at(0), u.ID, other.ID)
		must(t, st.SetMemberRoles(f.ctx, f.pid, o2.ID, u.ID, []string{r.ID}, at(0)), "SetMemberRoles")
		for _, uid := range []string{u.ID, u.ID, other.ID} {
			must(t, st.AddLoginLog(f.ctx, newLoginLog(f.pid, uid, newID(), at(0))), "AddLoginLog")
		}

		must(t, st.DeleteUser(f.ctx, f.pid, u.ID), "DeleteUser")
		wantMemberKeys(t, []string{key(other.ID, o1.ID)}, f.membersOf(o1.ID), "ListMembers(o1) after deleting a member")
		wantMemberKeys(t, nil, f.membersOf(o2.ID), "ListMembers(o2) after deleting its only member")
		wantMemberKeys(t, []string{key(other.ID, o1.ID)}, f.memberships(u.ID, other.ID), "ListMemberships after DeleteUser")
		logs, err := st.ListLoginLogs(f.ctx, f.pid, other.ID, 10, "")
		must(t, err, "ListLoginLogs(other user)")
		if len(logs) != 1 {
			t.Errorf("ListLoginLogs of another user after DeleteUser: %d logs, want 1", len(logs))
		}

		// A user created again with the same id must not inherit the old rows.
		must(t, st.CreateUser(f.ctx, u), "CreateUser with the deleted user's id")
		wantMemberKeys(t, nil, f.memberships(u.ID), "ListMemberships of a user re-created with a deleted user's id")
		logs, err = st.ListLoginLogs(f.ctx, f.pid, u.ID, 10, "")
		must(t, err, "ListLoginLogs of the re-created user")
		wantIDs(t, nil, idsOf(logs), "ListLoginLogs of a user re-created with a deleted user's id")
	})
}
