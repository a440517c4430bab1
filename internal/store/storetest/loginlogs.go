package storetest

import (
	"crypto/rand"
	"slices"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// newLoginLog returns an unsaved login log.
func newLoginLog(projectID, userID, id string, created time.Time) store.LoginLog {
	return store.LoginLog{
		ID: id, ProjectID: projectID, UserID: userID,
		IPAddress: "203.0.113.7", Country: "CH", City: "Zürich",
		UserAgent:      "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0",
		ConnectionType: "MagicLink", OS: "Linux", Device: "Desktop", Browser: "Chrome",
		CreatedAt: created,
	}
}

func testLoginLogs(t *testing.T, newStore func(t *testing.T) store.Store) {
	st := newStore(t)

	t.Run("NewestFirst", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		u, other := f.user(), f.user()
		// Ids in ascending order with creation times in the same order, so "newest first"
		// and "by id descending" agree.
		var logs []store.LoginLog
		for i, id := range sortedIDs(7) {
			l := newLoginLog(f.pid, u.ID, id, at(time.Duration(i)*time.Minute))
			l.IPAddress = "2001:db8::" + string(rune('a'+i))
			must(t, st.AddLoginLog(f.ctx, l), "AddLoginLog(%s)", id)
			logs = append(logs, l)
		}
		must(t, st.AddLoginLog(f.ctx, newLoginLog(f.pid, other.ID, newID(), at(0))), "AddLoginLog(other user)")
		newest := slices.Clone(logs)
		slices.Reverse(newest)

		got, err := st.ListLoginLogs(f.ctx, f.pid, u.ID, 100, "")
		must(t, err, "ListLoginLogs")
		wantRecords(t, newest, got, "ListLoginLogs (newest first, only this user's)")

		// Page backwards three at a time.
		var paged []store.LoginLog
		before := ""
		for range 10 {
			page, err := st.ListLoginLogs(f.ctx, f.pid, u.ID, 3, before)
			must(t, err, "ListLoginLogs(limit 3, before %q)", before)
			if len(page) > 3 {
				t.Fatalf("ListLoginLogs(limit 3) returned %d logs", len(page))
			}
			if len(page) == 0 {
				break
			}
			paged = append(paged, page...)
			before = page[len(page)-1].ID
		}
		wantRecords(t, newest, paged, "ListLoginLogs paged with `before`")

		got, err = st.ListLoginLogs(f.ctx, f.pid, u.ID, 2, logs[3].ID)
		must(t, err, "ListLoginLogs(limit 2, before the 4th)")
		wantRecords(t, []store.LoginLog{logs[2], logs[1]}, got, "ListLoginLogs(limit 2, before the 4th oldest)")
		got, err = st.ListLoginLogs(f.ctx, f.pid, u.ID, 5, logs[0].ID)
		must(t, err, "ListLoginLogs(before the oldest)")
		wantIDs(t, nil, idsOf(got), "ListLoginLogs before the oldest log")
	})

	// As with audit events: logs of one second have ids in random order, so newest first must
	// follow created_at, the id only breaking ties, and so must the pages a cursor continues.
	t.Run("NewestFirstWithinOneSecond", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		u := f.user()
		second := at(0).Truncate(time.Second)
		gen := &ident.Generator{Now: func() time.Time { return second }, Rand: rand.Reader}
		const n = 40
		var newestFirst []store.LoginLog
		for i := range n {
			l := newLoginLog(f.pid, u.ID, gen.New(), second.Add(time.Duration(i)*time.Microsecond))
			if i == n-1 { // a tie in created_at: the larger id counts as newer
				l.CreatedAt = newestFirst[0].CreatedAt
			}
			must(t, st.AddLoginLog(f.ctx, l), "AddLoginLog")
			newestFirst = append([]store.LoginLog{l}, newestFirst...)
		}
		if a, b := newestFirst[0], newestFirst[1]; a.ID < b.ID {
			newestFirst[0], newestFirst[1] = b, a
		}
		got, err := st.ListLoginLogs(f.ctx, f.pid, u.ID, 0, "")
		must(t, err, "ListLoginLogs")
		wantRecords(t, newestFirst, got, "ListLoginLogs of %d logs in one second", n)
		var paged []store.LoginLog
		before := ""
		for range n {
			page, err := st.ListLoginLogs(f.ctx, f.pid, u.ID, 7, before)
			must(t, err, "ListLoginLogs page")
			if len(page) == 0 {
				break
			}
			paged = append(paged, page...)
			before = page[len(page)-1].ID
		}
		wantRecords(t, newestFirst, paged, "pages of 7 of ListLoginLogs")
		got, err = st.ListLoginLogs(f.ctx, f.pid, u.ID, 10, newID())
		must(t, err, "ListLoginLogs before an unknown id")
		if len(got) != 0 {
			t.Errorf("ListLoginLogs before an id that is no log = %d logs, want none", len(got))
		}
	})

	t.Run("UnknownUser", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		u := f.user()
		unknown := newID()
		wantNotFound(t, st.AddLoginLog(f.ctx, newLoginLog(f.pid, unknown, newID(), at(0))), "AddLoginLog for an unknown user")
		wantNotFound(t, st.AddLoginLog(f.ctx, newLoginLog(newID(), u.ID, newID(), at(0))), "AddLoginLog in an unknown project")
		got, err := st.ListLoginLogs(f.ctx, f.pid, u.ID, 10, "")
		must(t, err, "ListLoginLogs")
		wantIDs(t, nil, idsOf(got), "ListLoginLogs after AddLoginLog failed in an unknown project")
	})
}
