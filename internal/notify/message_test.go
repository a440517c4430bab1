package notify_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/notify"
)

func TestPermanent(t *testing.T) {
	if notify.Permanent(nil) != nil {
		t.Fatal("Permanent(nil) is not nil")
	}
	cause := fmt.Errorf("rcpt: %w", fs.ErrNotExist)
	err := fmt.Errorf("send: %w", notify.Permanent(cause))
	if !errors.Is(err, notify.ErrPermanent) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("errors.Is through Permanent: %v", err)
	}
	if err.Error() != "send: rcpt: file does not exist" {
		t.Fatalf("Permanent changed the text: %q", err)
	}
	if errors.Is(cause, notify.ErrPermanent) {
		t.Fatal("the cause became permanent")
	}
}

func TestLogSenderHidesContent(t *testing.T) {
	var buf bytes.Buffer
	s := notify.LogSender{Log: slog.New(slog.NewJSONHandler(&buf, nil))}
	var _ notify.Sender = s // a value works, as app.Senders uses it

	for _, tc := range []struct {
		m      notify.Message
		masked string
		hidden []string
	}{
		{m: notify.Message{ID: "m1", ProjectID: "p1", Channel: notify.SMS, To: "+15551234567",
			Text: "271828 is your Acme code."}, masked: "+1******4567", hidden: []string{"+15551234567", "271828"}},
		{m: notify.Message{ID: "m2", ProjectID: "p1", Channel: notify.Email, To: "alice@example.com",
			Subject: "Code 314159", Text: "Your code is 314159", HTML: "<b>https://auth.test/verify?magictext=s3cr3t</b>"},
			masked: "a***@example.com", hidden: []string{"alice@example.com", "314159", "s3cr3t"}},
	} {
		buf.Reset()
		if err := s.Send(context.Background(), tc.m); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		for _, want := range []string{tc.m.ID, tc.m.ProjectID, string(tc.m.Channel), tc.masked} {
			if !strings.Contains(out, want) {
				t.Errorf("log lacks %q: %s", want, out)
			}
		}
		for _, h := range tc.hidden {
			if strings.Contains(out, h) {
				t.Errorf("log holds %q: %s", h, out)
			}
		}
	}
}

func TestLogSenderMasksOddRecipients(t *testing.T) {
	var buf bytes.Buffer
	s := notify.LogSender{Log: slog.New(slog.NewTextHandler(&buf, nil))}
	for _, to := range []string{"", "12345", "élodie@example.com", "+४४१२३४५६७८९"} {
		buf.Reset()
		if err := s.Send(context.Background(), notify.Message{ID: "m", Channel: notify.SMS, To: to}); err != nil {
			t.Fatal(err)
		}
		if to != "" && strings.Contains(buf.String(), to) {
			t.Errorf("log holds %q: %s", to, buf.String())
		}
	}
}
