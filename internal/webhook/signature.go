package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// Headers of a webhook request.
const (
	SignatureHeader = "Latchkey-Signature"
	EventIDHeader   = "Latchkey-Event-Id"
)

// Sign returns the Latchkey-Signature header of a request with body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256>", where the HMAC's key is the whole secret
// ("whsec_...") and its message is "<unix seconds>.<body>", as Stripe signs.
//
// A receiver verifies by computing the same HMAC over the raw body it got, comparing it in
// constant time with every v1 value of the header (there may be more than one in future), and
// refusing a t more than a few minutes from its own clock, which stops replays.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}
