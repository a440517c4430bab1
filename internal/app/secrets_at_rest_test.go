package app_test

import (
	"bytes"
	"encoding/base32"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
)

// TestNoSecretInTheDatabaseFiles runs the flows that handle secrets on a SQLite file, collects
// every secret they show a client, and reads the database files byte by byte for each: client
// secrets, refresh tokens, mfa_tokens, reset links and passwords are stored hashed, TOTP
// secrets and signing keys sealed, recovery codes hashed.
func TestNoSecretInTheDatabaseFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latchkey.db")
	st, err := sqlstore.OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	w := &mfaWorld{newPasswordWorld(t, st).flowWorld}
	secrets := map[string]string{"client secret": w.proj.ClientSecret}

	// A passwordless login: the code in the email, the refresh token it gives.
	w.setMFA(`{"policy":"required","factors":["otp","recovery-code"]}`)
	r := w.post("email-otp/send", `{"email":"ada@example.com"}`)
	// The code itself is too short to search for without false alarms (six digits turn up in
	// ids and timestamps); its flow keeps only a hash, as the flow tests show.
	code := w.lastCode("ada@example.com")
	first := w.post("email-otp/verify", fmt.Sprintf(`{"state":%q,"otp":%q}`, r.body["state"], code))
	tok := w.challenged(first)
	secrets["mfa_token"] = tok

	// MFA: the TOTP secret and the recovery codes.
	enr := w.call("POST", mfaBase+"enroll", fmt.Sprintf(`{"authenticator_types":["otp"],"mfa_token":%q}`, tok), w.cid())
	w.want(enr, 200, "")
	secret := enr.body["secret"].(string)
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil {
		t.Fatal(err)
	}
	secrets["TOTP secret"], secrets["TOTP secret (raw)"] = secret, string(raw)
	for i, c := range enr.body["recovery_codes"].([]any) {
		secrets[fmt.Sprintf("recovery code %d", i)] = c.(string)
		secrets[fmt.Sprintf("recovery code %d (as stored if unhashed)", i)] = strings.ReplaceAll(c.(string), "-", "")
	}
	res := w.validate(fmt.Sprintf(`{"mfa_token":%q,"otp":%q}`, tok, w.code(secret)))
	w.authenticated(res)
	secrets["refresh token"] = res.body["refresh_token"].(string)

	// Passwords: the password and a reset link's token.
	w.call("PATCH", "/api/v1/project", `{"settings":{"mfa":{"policy":"off"}}}`, w.secret())
	w.want(w.call("PUT", "/api/v1/users/"+claims(t, res.body["access_token"].(string))["sub"].(string)+"/password",
		`{"password":"a password nobody may read"}`, w.secret()), 200, "")
	secrets["password"] = "a password nobody may read"
	w.clock.Advance(time.Second) // the dev inbox lists the newest first, by time
	w.want(w.call("POST", passwordBase+"reset/send", `{"email":"ada@example.com","redirect_url":"https://app.acme.test/done"}`, w.cid()), 200, "")
	link := resetLinkRE.FindString(w.inbox("ada@example.com")[0]["text"].(string))
	u, err := url.Parse(link)
	if err != nil || link == "" {
		t.Fatalf("reset link %q: %v", link, err)
	}
	secrets["reset token"] = u.Query().Get("token")

	// The main file and its WAL together hold every page written.
	files, _ := filepath.Glob(path + "*")
	var all []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	if len(all) < 4096 {
		t.Fatalf("read %d bytes of database files", len(all))
	}
	for name, s := range secrets {
		if len(s) < 10 {
			t.Fatalf("%s %q is too short to search for", name, s)
		}
		if bytes.Contains(all, []byte(s)) {
			t.Errorf("the database files hold the %s in plaintext", name)
		}
	}
	if bytes.Contains(all, []byte("PRIVATE KEY")) {
		t.Error("the database files hold a PEM private key")
	}
}
