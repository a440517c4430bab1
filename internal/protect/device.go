package protect

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

// DeviceTTL is how long a device token is honoured after the sign-in that issued it; each
// sign-in from the device issues a fresh one.
const DeviceTTL = 180 * 24 * time.Hour

// devicePrefix starts every device token, so that one is recognisable in a header or cookie.
const devicePrefix = "lkd1."

// MinDeviceKey is the shortest device-token key the engine accepts.
const MinDeviceKey = 32

// IssueDevice returns a device token for the account of a secret that was just accepted (an
// OWASP "device cookie"): an HMAC over the project, the account, a random device id and the
// time, with the engine's DeviceKey. The client sends it with later attempts (Guard.Device), which
// then count on that device alone. "" when the engine has no key.
func (e *Engine) IssueDevice(p store.Project, account string) (string, error) {
	if len(e.d.DeviceKey) < MinDeviceKey {
		return "", nil
	}
	payload := make([]byte, 16+8)
	if _, err := rand.Read(payload[:16]); err != nil {
		return "", fmt.Errorf("make a device id: %w", err)
	}
	binary.BigEndian.PutUint64(payload[16:], uint64(e.now().Unix()))
	body := base64.RawURLEncoding.EncodeToString(payload)
	return devicePrefix + body + "." + base64.RawURLEncoding.EncodeToString(e.deviceMAC(p.ID, account, body)), nil
}

// device returns the device id of g's token when the token is valid for g's project and
// account and not older than DeviceTTL.
func (e *Engine) device(g Guard) (string, bool) {
	id, err := e.parseDevice(g.Project.ID, g.Account, g.Device)
	return id, err == nil
}

func (e *Engine) parseDevice(projectID, account, tok string) (string, error) {
	if len(e.d.DeviceKey) < MinDeviceKey || tok == "" {
		return "", errors.New("no device token")
	}
	if len(tok) > 256 || !strings.HasPrefix(tok, devicePrefix) {
		return "", errors.New("not a device token")
	}
	body, mac, ok := strings.Cut(strings.TrimPrefix(tok, devicePrefix), ".")
	if !ok {
		return "", errors.New("malformed device token")
	}
	got, err := base64.RawURLEncoding.DecodeString(mac)
	if err != nil || !hmac.Equal(got, e.deviceMAC(projectID, account, body)) {
		return "", errors.New("device token of another project or account, or forged")
	}
	payload, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil || len(payload) != 24 {
		return "", errors.New("malformed device token")
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(payload[16:])), 0)
	if age := e.now().Sub(issued); age < -time.Minute || age > DeviceTTL {
		return "", errors.New("device token expired")
	}
	return hex.EncodeToString(payload[:16]), nil
}

func (e *Engine) deviceMAC(projectID, account, body string) []byte {
	m := hmac.New(sha256.New, e.d.DeviceKey)
	m.Write([]byte("latchkey device token\x00" + projectID + "\x00" + account + "\x00" + body))
	return m.Sum(nil)
}
