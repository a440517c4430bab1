package breach

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestOfflineFindsCommonPasswords(t *testing.T) {
	o := NewOffline()
	for _, pw := range []string{
		"password", "password123", "qwertyuiop", "iloveyou", "trustno1", "12345678", "football1",
		// Compared NFKC-normalised and lower-cased.
		"PASSWORD123", "QwErTyUiOp", "ｐａｓｓｗｏｒｄ１２３", "ＩＬＯＶＥＹＯＵ",
	} {
		hit, err := o.Breached(context.Background(), pw)
		if !hit || err != nil {
			t.Errorf("Breached(%q) = %v, %v; want true, nil", pw, hit, err)
		}
	}
}

func TestOfflineMisses(t *testing.T) {
	o := NewOffline()
	random := make([]byte, 16)
	if _, err := rand.Read(random); err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{
		hex.EncodeToString(random),
		"correct horse battery staple 7f3a",
		"password123 ", // spaces count: not trimmed
		"",
		"pass", // shorter than anything listed
	} {
		hit, err := o.Breached(context.Background(), pw)
		if hit || err != nil {
			t.Errorf("Breached(%q) = %v, %v; want false, nil", pw, hit, err)
		}
	}
}

// The list must be in exactly the form Breached looks up, or entries would be missed silently:
// scripts/gen-common-passwords.sh normalises with JavaScript, Breached with Go.
func TestEmbeddedListIsInLookupForm(t *testing.T) {
	zr, err := gzip.NewReader(bytes.NewReader(commonGz))
	if err != nil {
		t.Fatal(err)
	}
	text, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(text), "\n") {
		t.Error("the list does not end with a newline")
	}
	entries := strings.Split(strings.TrimSuffix(string(text), "\n"), "\n")
	if len(entries) != 50000 {
		t.Errorf("the list holds %d entries, want the 50000 of fxa-common-password-list 0.0.4", len(entries))
	}
	for i, e := range entries {
		switch {
		case offlineKey(e) != e:
			t.Errorf("line %d %q is not NFKC lower case (%q)", i+1, e, offlineKey(e))
		case utf8.RuneCountInString(e) < 8:
			t.Errorf("line %d %q is shorter than 8 code points", i+1, e)
		case strings.ContainsAny(e, "\r\x00"):
			t.Errorf("line %d %q holds a control character", i+1, e)
		case i > 0 && entries[i-1] >= e:
			t.Errorf("line %d %q is not after %q", i+1, e, entries[i-1])
		}
	}
}

func TestOfflineRefusesABrokenList(t *testing.T) {
	gz := func(s string) []byte {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		if _, err := zw.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	for name, data := range map[string][]byte{
		"not gzip":   []byte("password123\n"),
		"unsorted":   gz("qwertyuiop\npassword123\n"),
		"duplicated": gz("password123\npassword123\n"),
	} {
		o := &Offline{gz: data}
		for range 2 { // the error is kept, not retried
			if hit, err := o.Breached(context.Background(), "password123"); hit || err == nil {
				t.Errorf("%s: Breached = %v, %v; want false, an error", name, hit, err)
			}
		}
	}
	if hit, err := (&Offline{gz: gz("password123\nqwertyuiop\n")}).Breached(context.Background(), "qwertyuiop"); !hit || err != nil {
		t.Errorf("a good list: Breached = %v, %v; want true, nil", hit, err)
	}
}

func TestOfflineHonoursCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := NewOffline().Breached(ctx, "password123"); err == nil {
		t.Fatal("Breached with a cancelled context succeeded")
	}
}
