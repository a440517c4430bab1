package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

func newFlow(projectID string, created time.Time) store.Flow {
	return store.Flow{ID: newID(), ProjectID: projectID, Channel: "email_otp", Destination: "ann@example.com",
		SecretHash: randomHash(), Status: store.FlowPending, MaxAttempts: 3,
		CreatedAt: created, SentAt: created, ExpiresAt: created.Add(5 * time.Minute)}
}

func testFlows(t *testing.T, newStore func(t *testing.T) store.Store) {
	st := newStore(t)

	t.Run("VerifyCollect", func(t *testing.T) {
		t.Parallel()
		f, g := inNewProject(t, st), inNewProject(t, st)
		fl := newFlow(f.pid, at(0))
		fl.RedirectURL = "https://app.example.com/done"
		must(t, st.CreateFlow(f.ctx, fl), "CreateFlow")
		got, err := st.GetFlow(f.ctx, f.pid, fl.ID)
		must(t, err, "GetFlow")
		wantEqual(t, fl, got, "flow after CreateFlow")
		_, err = st.GetFlow(f.ctx, g.pid, fl.ID)
		wantNotFound(t, err, "GetFlow through another project")
		wantNotFound(t, st.CreateFlow(f.ctx, newFlow(newID(), at(0))), "CreateFlow in an unknown project")

		_, err = st.VerifyFlow(f.ctx, f.pid, fl.ID, randomHash(), at(time.Minute))
		wantNotFound(t, err, "VerifyFlow with the wrong secret")
		_, err = st.VerifyFlow(f.ctx, g.pid, fl.ID, fl.SecretHash, at(time.Minute))
		wantNotFound(t, err, "VerifyFlow through another project")
		_, err = st.CollectFlow(f.ctx, f.pid, fl.ID, at(time.Minute))
		wantNotFound(t, err, "CollectFlow of a pending flow")

		when := at(time.Minute)
		got, err = st.VerifyFlow(f.ctx, f.pid, fl.ID, fl.SecretHash, when)
		must(t, err, "VerifyFlow")
		fl.Status, fl.VerifiedAt = store.FlowVerified, ptr(when)
		wantEqual(t, fl, got, "flow after VerifyFlow")
		_, err = st.VerifyFlow(f.ctx, f.pid, fl.ID, fl.SecretHash, when)
		wantNotFound(t, err, "VerifyFlow a second time")

		u := f.user()
		must(t, st.SetFlowUser(f.ctx, f.pid, fl.ID, u.ID), "SetFlowUser")
		wantNotFound(t, st.SetFlowUser(f.ctx, g.pid, fl.ID, u.ID), "SetFlowUser through another project")
		got, err = st.CollectFlow(f.ctx, f.pid, fl.ID, at(2*time.Minute))
		must(t, err, "CollectFlow")
		fl.UserID, fl.Status, fl.CollectedAt = u.ID, store.FlowCollected, ptr(at(2*time.Minute))
		wantEqual(t, fl, got, "flow after CollectFlow")
		_, err = st.CollectFlow(f.ctx, f.pid, fl.ID, at(3*time.Minute))
		wantNotFound(t, err, "CollectFlow a second time")
	})

	t.Run("ExpiryAndAttempts", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		fl := newFlow(f.pid, at(0))
		must(t, st.CreateFlow(f.ctx, fl), "CreateFlow")
		_, err := st.VerifyFlow(f.ctx, f.pid, fl.ID, fl.SecretHash, fl.ExpiresAt)
		wantNotFound(t, err, "VerifyFlow at the expiry")

		other := newFlow(f.pid, at(0))
		must(t, st.CreateFlow(f.ctx, other), "CreateFlow")
		for i := 1; i <= other.MaxAttempts; i++ {
			got, err := st.FailFlowAttempt(f.ctx, f.pid, other.ID)
			must(t, err, "FailFlowAttempt %d", i)
			wantStatus := store.FlowPending
			if i == other.MaxAttempts {
				wantStatus = store.FlowDead
			}
			if got.Attempts != i || got.Status != wantStatus {
				t.Fatalf("after %d failed attempts: attempts %d status %s, want %d %s", i, got.Attempts, got.Status, i, wantStatus)
			}
		}
		_, err = st.FailFlowAttempt(f.ctx, f.pid, other.ID)
		wantNotFound(t, err, "FailFlowAttempt on a dead flow")
		_, err = st.VerifyFlow(f.ctx, f.pid, other.ID, other.SecretHash, at(time.Minute))
		wantNotFound(t, err, "VerifyFlow of a dead flow with the right secret")
	})

	t.Run("Resend", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		fl := newFlow(f.pid, at(0))
		must(t, st.CreateFlow(f.ctx, fl), "CreateFlow")
		// Too soon: last sent after notAfter.
		_, err := st.ResendFlow(f.ctx, f.pid, fl.ID, randomHash(), at(10*time.Second), at(5*time.Minute), at(-20*time.Second), 2)
		wantNotFound(t, err, "ResendFlow too soon")
		for i := 1; i <= 2; i++ {
			sent := at(time.Duration(i) * time.Minute)
			h := randomHash()
			got, err := st.ResendFlow(f.ctx, f.pid, fl.ID, h, sent, sent.Add(5*time.Minute), sent.Add(-30*time.Second), 2)
			must(t, err, "ResendFlow %d", i)
			if got.Resends != i || !got.SentAt.Equal(sent) || string(got.SecretHash) != string(h) {
				t.Fatalf("after resend %d: %+v", i, got)
			}
			// The old secret is void.
			_, err = st.VerifyFlow(f.ctx, f.pid, fl.ID, fl.SecretHash, sent)
			wantNotFound(t, err, "VerifyFlow with the secret a resend replaced")
			fl.SecretHash = h
		}
		_, err = st.ResendFlow(f.ctx, f.pid, fl.ID, randomHash(), at(time.Hour), at(2*time.Hour), at(time.Hour), 2)
		wantNotFound(t, err, "ResendFlow beyond the limit")
		_, err = st.VerifyFlow(f.ctx, f.pid, fl.ID, fl.SecretHash, at(2*time.Minute))
		must(t, err, "VerifyFlow with the newest secret")
	})

	t.Run("VerifyRace", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		fl := newFlow(f.pid, now())
		must(t, st.CreateFlow(f.ctx, fl), "CreateFlow")
		_, errs := race(racers, func(int) (store.Flow, error) {
			return st.VerifyFlow(f.ctx, f.pid, fl.ID, fl.SecretHash, now())
		})
		checkOneWinner(t, errs, store.ErrNotFound, "VerifyFlow of one flow")
	})

	t.Run("CollectRace", func(t *testing.T) {
		t.Parallel()
		f := inNewProject(t, st)
		fl := newFlow(f.pid, now())
		must(t, st.CreateFlow(f.ctx, fl), "CreateFlow")
		_, err := st.VerifyFlow(f.ctx, f.pid, fl.ID, fl.SecretHash, now())
		must(t, err, "VerifyFlow")
		_, errs := race(racers, func(int) (store.Flow, error) { return st.CollectFlow(f.ctx, f.pid, fl.ID, now()) })
		checkOneWinner(t, errs, store.ErrNotFound, "CollectFlow of one flow")
	})
}

func newMessage(projectID string, available time.Time) store.OutboxMessage {
	return store.OutboxMessage{ID: newID(), ProjectID: projectID, Channel: "email", Recipient: "ann@example.com",
		Payload: randomHash(), CreatedAt: available, AvailableAt: available}
}

// testOutbox runs on its own store: claims see every project's messages.
func testOutbox(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("ClaimSendFail", func(t *testing.T) {
		st := newStore(t)
		f := inNewProject(t, st)
		a, b, later := newMessage(f.pid, at(0)), newMessage(f.pid, at(time.Second)), newMessage(f.pid, at(time.Hour))
		for _, m := range []store.OutboxMessage{a, b, later} {
			must(t, st.EnqueueMessage(f.ctx, m), "EnqueueMessage")
		}
		wantNotFound(t, st.EnqueueMessage(f.ctx, newMessage(newID(), at(0))), "EnqueueMessage in an unknown project")

		now := at(time.Minute)
		got, err := st.ClaimMessages(f.ctx, now, 30*time.Second, 10)
		must(t, err, "ClaimMessages")
		a.AvailableAt, a.Attempts = now.Add(30*time.Second), 1
		b.AvailableAt, b.Attempts = now.Add(30*time.Second), 1
		wantRecords(t, []store.OutboxMessage{a, b}, got, "ClaimMessages (available ones, oldest first, leased)")
		got, err = st.ClaimMessages(f.ctx, now.Add(10*time.Second), 30*time.Second, 10)
		must(t, err, "ClaimMessages during the lease")
		wantIDs(t, nil, idsOf(got), "ClaimMessages while the lease holds")

		must(t, st.MarkMessageSent(f.ctx, a.ID, now, false), "MarkMessageSent")
		must(t, st.MarkMessageFailed(f.ctx, b.ID, now.Add(time.Minute), "451 try later", false), "MarkMessageFailed")
		wantNotFound(t, st.MarkMessageSent(f.ctx, newID(), now, false), "MarkMessageSent of an unknown message")

		got, err = st.ClaimMessages(f.ctx, now.Add(2*time.Minute), 30*time.Second, 10)
		must(t, err, "ClaimMessages after the retry time")
		if len(got) != 1 || got[0].ID != b.ID || got[0].Attempts != 2 || got[0].LastError != "451 try later" {
			t.Fatalf("retry claim = %+v, want b on its second attempt", got)
		}
		must(t, st.MarkMessageFailed(f.ctx, b.ID, now.Add(3*time.Minute), "550 no such user", true), "MarkMessageFailed (give up)")
		got, err = st.ClaimMessages(f.ctx, at(2*time.Hour), 30*time.Second, 10)
		must(t, err, "ClaimMessages much later")
		wantIDs(t, []string{later.ID}, idsOf(got), "ClaimMessages never returns sent or abandoned messages")

		list, err := st.ListOutbox(f.ctx, 10)
		must(t, err, "ListOutbox")
		if len(list) != 3 || list[0].ID != later.ID {
			t.Fatalf("ListOutbox = %v", idsOf(list))
		}
		for _, m := range list {
			if m.ID == a.ID && (m.SentAt == nil || len(m.Payload) != 0) {
				t.Errorf("sent message = %+v, want sent_at and no payload", m)
			}
			if m.ID == b.ID && m.FailedAt == nil {
				t.Errorf("abandoned message = %+v, want failed_at", m)
			}
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		st := newStore(t)
		f := inNewProject(t, st)
		expiring, forever := newMessage(f.pid, at(0)), newMessage(f.pid, at(time.Second))
		expiring.ExpiresAt = ptr(at(5 * time.Minute))
		for _, m := range []store.OutboxMessage{expiring, forever} {
			must(t, st.EnqueueMessage(f.ctx, m), "EnqueueMessage")
		}
		list, err := st.ListOutbox(f.ctx, 10)
		must(t, err, "ListOutbox")
		wantRecords(t, []store.OutboxMessage{forever, expiring}, list, "ListOutbox (the expiry and its absence round-trip)")

		// Claims do not filter on the expiry: the worker gives an expired message up and
		// records that it did, which a message silently left behind would not show.
		now := at(time.Hour)
		got, err := st.ClaimMessages(f.ctx, now, time.Minute, 10)
		must(t, err, "ClaimMessages")
		expiring.AvailableAt, expiring.Attempts = now.Add(time.Minute), 1
		forever.AvailableAt, forever.Attempts = now.Add(time.Minute), 1
		wantRecords(t, []store.OutboxMessage{expiring, forever}, got, "ClaimMessages past the expiry")
	})

	t.Run("ConcurrentClaimsAreDisjoint", func(t *testing.T) {
		st := newStore(t)
		f := inNewProject(t, st)
		const n = 40
		for range n {
			must(t, st.EnqueueMessage(f.ctx, newMessage(f.pid, at(0))), "EnqueueMessage")
		}
		var mu sync.Mutex
		seen := map[string]int{}
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for {
					got, err := st.ClaimMessages(f.ctx, at(time.Minute), time.Hour, 3)
					if err != nil {
						t.Error(err)
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, m := range got {
						seen[m.ID]++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(seen) != n {
			t.Errorf("workers claimed %d distinct messages, want %d", len(seen), n)
		}
		for id, c := range seen {
			if c != 1 {
				t.Errorf("message %s was claimed %d times under one lease", id, c)
			}
		}
	})
}

func testMessageTemplates(t *testing.T, newStore func(t *testing.T) store.Store) {
	st := newStore(t)
	t.Run("PutGetDelete", func(t *testing.T) {
		t.Parallel()
		f, g := inNewProject(t, st), inNewProject(t, st)
		tm := store.MessageTemplate{ProjectID: f.pid, Name: "email_otp", Subject: "Your code", Text: "{{.code}}", HTML: "<b>{{.code}}</b>", UpdatedAt: at(0)}
		must(t, st.PutTemplate(f.ctx, tm), "PutTemplate")
		got, err := st.GetTemplate(f.ctx, f.pid, "email_otp")
		must(t, err, "GetTemplate")
		wantEqual(t, tm, got, "template after PutTemplate")
		tm.Subject, tm.UpdatedAt = "Your new code", at(time.Hour)
		must(t, st.PutTemplate(f.ctx, tm), "PutTemplate (replace)")
		got, err = st.GetTemplate(f.ctx, f.pid, "email_otp")
		must(t, err, "GetTemplate")
		wantEqual(t, tm, got, "template after a second PutTemplate")
		_, err = st.GetTemplate(f.ctx, g.pid, "email_otp")
		wantNotFound(t, err, "GetTemplate through another project")
		wantNotFound(t, st.DeleteTemplate(f.ctx, g.pid, "email_otp"), "DeleteTemplate through another project")
		must(t, st.DeleteTemplate(f.ctx, f.pid, "email_otp"), "DeleteTemplate")
		_, err = st.GetTemplate(f.ctx, f.pid, "email_otp")
		wantNotFound(t, err, "GetTemplate after DeleteTemplate")
		if err := st.PutTemplate(f.ctx, store.MessageTemplate{ProjectID: newID(), Name: "sms_otp", UpdatedAt: at(0)}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("PutTemplate in an unknown project: err = %v, want ErrNotFound", err)
		}
	})
}
