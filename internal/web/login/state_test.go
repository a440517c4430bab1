package login

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/secretbox"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/testclock"
)

func testHandler(t testing.TB) *Handler {
	t.Helper()
	ring, err := secretbox.NewKeyring([]byte("state test master key, 32 bytes!"))
	if err != nil {
		t.Fatal(err)
	}
	clock := testclock.New(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC))
	h, err := New(Deps{Sealer: ring, Now: clock.Now, PublicURL: "https://auth.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// An attempt opens only for its own request and binding, and not after it expires.
func TestAttemptIsBoundToRequestAndBrowser(t *testing.T) {
	h := testHandler(t)
	clock := testclock.New(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC))
	h.d.Now = clock.Now
	c := &pageContext{request: "ar1", binding: "b1", project: store.Project{ID: "p1"}}
	a := newAttempt(clock.Now())
	a.Flow = "flow-state"
	rec := httptest.NewRecorder()
	if err := h.saveAttempt(rec, c, a); err != nil {
		t.Fatal(err)
	}
	ck := rec.Result().Cookies()[0]
	if !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Name[:7] != "__Host-" {
		t.Errorf("cookie %+v", ck)
	}
	load := func(c *pageContext) *attempt {
		r := httptest.NewRequest(http.MethodGet, "/login", nil)
		r.AddCookie(&http.Cookie{Name: h.attemptCookie(c), Value: ck.Value})
		return h.loadAttempt(r, c)
	}
	if got := load(c); got == nil || got.Flow != "flow-state" || got.CSRF != a.CSRF {
		t.Fatalf("own attempt: %+v", got)
	}
	if load(&pageContext{request: "ar1", binding: "another browser"}) != nil {
		t.Error("opened under another binding")
	}
	if load(&pageContext{request: "ar2", binding: "b1"}) != nil {
		t.Error("opened for another request")
	}
	clock.Advance(attemptTTL)
	if load(c) != nil {
		t.Error("opened after it expired")
	}
}

// FuzzAttemptCookie: no cookie value makes the page panic, and only an exact, untouched seal
// opens (AES-GCM refuses any other change). Each fuzzing worker makes its own handler, with
// the same key, so a seed sealed by another process may open too.
func FuzzAttemptCookie(f *testing.F) {
	h := testHandler(f)
	c := &pageContext{request: "ar1", binding: "b1"}
	rec := httptest.NewRecorder()
	if err := h.saveAttempt(rec, c, newAttempt(h.d.Now())); err != nil {
		f.Fatal(err)
	}
	good := rec.Result().Cookies()[0].Value
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add("")
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, v string) {
		r := httptest.NewRequest(http.MethodGet, "/login", nil)
		r.Header.Set("Cookie", h.attemptCookie(c)+"="+v)
		a := h.loadAttempt(r, c)
		if a == nil {
			return
		}
		raw, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil || base64.RawURLEncoding.EncodeToString(raw) != v || a.CSRF == "" {
			t.Fatalf("opened %q", v)
		}
	})
}
