package storetest

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

// pagedList is one listing that pages by id: insert adds a row with the given id to it, list
// reads one page of it and returns the ids (user ids for ListMembers).
type pagedList struct {
	insert func(ctx context.Context, id string) error
	list   func(ctx context.Context, p store.Page) ([]string, error)
}

// pagedLists prepares each paged listing in a new project of st.
var pagedLists = []struct {
	name  string
	setup func(t *testing.T, st store.Store) pagedList
}{
	{"ListUsers", func(t *testing.T, st store.Store) pagedList {
		f := inNewProject(t, st)
		return pagedList{
			insert: func(ctx context.Context, id string) error {
				u := f.newUser()
				u.ID = id
				return st.CreateUser(ctx, u)
			},
			list: func(ctx context.Context, p store.Page) ([]string, error) {
				us, err := st.ListUsers(ctx, f.pid, store.UserFilter{}, p)
				return idsOf(us), err
			},
		}
	}},
	{"ListOrganizations", func(t *testing.T, st store.Store) pagedList {
		f := inNewProject(t, st)
		return pagedList{
			insert: func(ctx context.Context, id string) error {
				return st.CreateOrganization(ctx, store.Organization{ID: id, ProjectID: f.pid, Name: "Org " + id, Active: true, CreatedAt: now(), UpdatedAt: now()})
			},
			list: func(ctx context.Context, p store.Page) ([]string, error) {
				os, err := st.ListOrganizations(ctx, f.pid, p)
				return idsOf(os), err
			},
		}
	}},
	{"ListRoles", func(t *testing.T, st store.Store) pagedList {
		f := inNewProject(t, st)
		return pagedList{
			insert: func(ctx context.Context, id string) error {
				return st.CreateRole(ctx, store.Role{ID: id, ProjectID: f.pid, Name: "Role " + id, Slug: "role-" + id, Active: true, CreatedAt: now(), UpdatedAt: now()})
			},
			list: func(ctx context.Context, p store.Page) ([]string, error) {
				rs, err := st.ListRoles(ctx, f.pid, p)
				return idsOf(rs), err
			},
		}
	}},
	{"ListPermissions", func(t *testing.T, st store.Store) pagedList {
		f := inNewProject(t, st)
		return pagedList{
			insert: func(ctx context.Context, id string) error {
				return st.CreatePermission(ctx, store.Permission{ID: id, ProjectID: f.pid, Name: "Perm " + id, Slug: "perm-" + id, CreatedAt: now(), UpdatedAt: now()})
			},
			list: func(ctx context.Context, p store.Page) ([]string, error) {
				ps, err := st.ListPermissions(ctx, f.pid, p)
				return idsOf(ps), err
			},
		}
	}},
	{"ListMembers", func(t *testing.T, st store.Store) pagedList {
		f := inNewProject(t, st)
		o := f.org()
		f.members(f.org().ID, at(0), f.user().ID) // another organization's member must not appear
		return pagedList{
			insert: func(ctx context.Context, id string) error {
				u := f.newUser()
				u.ID = id
				if err := st.CreateUser(ctx, u); err != nil {
					return err
				}
				return st.AddMembers(ctx, f.pid, o.ID, []string{id}, now())
			},
			list: func(ctx context.Context, p store.Page) ([]string, error) {
				ms, err := st.ListMembers(ctx, f.pid, o.ID, p)
				ids := make([]string, len(ms))
				for i, m := range ms {
					ids[i] = m.UserID
				}
				return ids, err
			},
		}
	}},
}

func testPaging(t *testing.T, newStore func(t *testing.T) store.Store) {
	st := newStore(t)
	for _, pl := range pagedLists {
		t.Run(pl.name, func(t *testing.T) {
			t.Parallel()
			t.Run("ExactPages", func(t *testing.T) { checkExactPages(t, pl.setup(t, st)) })
			t.Run("InsertsBetweenPages", func(t *testing.T) { checkInsertsBetweenPages(t, pl.setup(t, st)) })
		})
	}
	t.Run("ListUsersWithConcurrentWriter", func(t *testing.T) {
		t.Parallel()
		checkConcurrentInserts(t, pagedLists[0].setup(t, st))
	})
}

// insertAll inserts rows with the given ids, in a random order.
func insertAll(t *testing.T, l pagedList, ids []string) {
	t.Helper()
	for _, i := range rand.Perm(len(ids)) {
		must(t, l.insert(t.Context(), ids[i]), "insert %s", ids[i])
	}
}

// checkExactPages checks that pages are consecutive runs of the ids in ascending order.
func checkExactPages(t *testing.T, l pagedList) {
	ctx := t.Context()
	ids := sortedIDs(10)
	insertAll(t, l, ids)
	after := ""
	for i := 0; i <= len(ids); i += 3 {
		got, err := l.list(ctx, store.Page{Limit: 3, After: after})
		must(t, err, "list(limit 3, after %q)", after)
		want := ids[i:min(i+3, len(ids))]
		if !wantIDs(t, want, got, "page %d (limit 3, after %q)", i/3+1, after) {
			return
		}
		if len(got) > 0 {
			after = got[len(got)-1]
		}
	}
	got, err := l.list(ctx, store.Page{Limit: 3, After: ids[len(ids)-1]})
	must(t, err, "list after the last id")
	wantIDs(t, nil, got, "page after the last id")
	got, err = l.list(ctx, store.Page{Limit: 100})
	must(t, err, "list(limit 100)")
	wantIDs(t, ids, got, "one page larger than the list")
	got, err = l.list(ctx, store.Page{Limit: 4, After: shiftedIDs(-time.Hour).New()})
	must(t, err, "list after an id older than every row")
	wantIDs(t, ids[:4], got, "page after an id older than every row")
	if between := nextID(ids[3]); between < ids[4] {
		got, err = l.list(ctx, store.Page{Limit: 2, After: between})
		must(t, err, "list after an id that is not in the list")
		wantIDs(t, ids[4:6], got, "page after an id between the 4th and 5th rows that is not in the list")
	}
}

// nextID returns the id right after id in id order (its random part plus one).
func nextID(id string) string {
	n, err := strconv.ParseUint(id[8:], 16, 64)
	if err != nil || n == math.MaxUint64 {
		return id
	}
	return fmt.Sprintf("%s%016x", id[:8], n+1)
}

// checkInsertsBetweenPages pages through a list with a small limit and, between pages, inserts
// rows whose ids sort behind the cursor, ahead of every row, and anywhere. Every row that existed
// before paging started must be seen exactly once, in strictly increasing id order; rows inserted
// ahead must be seen and rows inserted behind the cursor must not.
func checkInsertsBetweenPages(t *testing.T, l pagedList) {
	ctx := t.Context()
	before := sortedIDs(13)
	insertAll(t, l, before)
	behindIDs, aheadIDs := shiftedIDs(-time.Hour), shiftedIDs(time.Hour)
	behind, ahead, anywhere := map[string]bool{}, map[string]bool{}, map[string]bool{}

	var seen []string
	after := ""
	for page := 1; ; page++ {
		if page > 100 {
			t.Fatalf("paging did not end after %d pages; seen %d ids", page-1, len(seen))
		}
		got, err := l.list(ctx, store.Page{Limit: 4, After: after})
		must(t, err, "page %d (limit 4, after %q)", page, after)
		if len(got) > 4 {
			t.Fatalf("page %d (limit 4) has %d rows", page, len(got))
		}
		if len(got) == 0 {
			break
		}
		seen = append(seen, got...)
		after = got[len(got)-1]
		if page <= 3 {
			for _, c := range []struct {
				set map[string]bool
				id  string
			}{{behind, behindIDs.New()}, {ahead, aheadIDs.New()}, {anywhere, newID()}} {
				must(t, l.insert(ctx, c.id), "insert %s between pages", c.id)
				c.set[c.id] = true
			}
		}
	}
	checkSeen(t, before, seen, func(id string) string {
		switch {
		case behind[id]:
			return "inserted behind the cursor after paging started"
		case ahead[id], anywhere[id]:
			return ""
		}
		return "never inserted into this list"
	})
	for id := range ahead {
		if !slicesContains(seen, id) {
			t.Errorf("id %s, inserted ahead of the cursor while paging, was never seen", id)
		}
	}
}

// checkConcurrentInserts pages through a list while another goroutine inserts rows.
func checkConcurrentInserts(t *testing.T, l pagedList) {
	ctx := t.Context()
	before := sortedIDs(20)
	insertAll(t, l, before)

	const extra = 40
	inserted := make(chan string, extra)
	errs := make(chan error, 1)
	start := make(chan struct{})
	go func() {
		defer close(inserted)
		gens := []func() string{newID, shiftedIDs(-time.Hour).New, shiftedIDs(time.Hour).New}
		<-start
		for i := range extra {
			id := gens[i%len(gens)]()
			if err := l.insert(ctx, id); err != nil {
				errs <- fmt.Errorf("insert %s from the concurrent writer: %w", id, err)
				return
			}
			inserted <- id
		}
	}()

	var seen []string
	after := ""
	close(start)
	for page := 1; page <= 1000; page++ {
		got, err := l.list(ctx, store.Page{Limit: 3, After: after})
		if err != nil {
			t.Errorf("page %d (limit 3, after %q): %v", page, after, err)
			break
		}
		if len(got) > 3 {
			t.Errorf("page %d (limit 3) has %d rows", page, len(got))
		}
		if len(got) == 0 {
			break
		}
		seen = append(seen, got...)
		after = got[len(got)-1]
	}
	others := map[string]bool{}
	for id := range inserted { // drains until the writer is done
		others[id] = true
	}
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	checkSeen(t, before, seen, func(id string) string {
		if others[id] {
			return ""
		}
		return "never inserted into this list"
	})
}

// checkSeen checks that seen is strictly increasing and holds every id of before exactly once.
// why tells why an id that is not in before must not be seen, or "" if it may be.
func checkSeen(t *testing.T, before, seen []string, why func(id string) string) {
	t.Helper()
	for i := 1; i < len(seen); i++ {
		if seen[i] <= seen[i-1] {
			t.Errorf("ids not strictly increasing across pages: %s at position %d follows %s", seen[i], i, seen[i-1])
		}
	}
	count := map[string]int{}
	for _, id := range seen {
		count[id]++
	}
	for _, id := range before {
		if count[id] != 1 {
			t.Errorf("id %s, present before paging started, seen %d times, want exactly once", id, count[id])
		}
	}
	existed := map[string]bool{}
	for _, id := range before {
		existed[id] = true
	}
	for id := range count {
		if !existed[id] {
			if reason := why(id); reason != "" {
				t.Errorf("id %s seen while paging, but it was %s", id, reason)
			}
		}
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
