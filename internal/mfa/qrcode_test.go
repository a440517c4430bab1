package mfa

import (
	"bytes"
	"image"
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/mfa/mfatest"
)

func TestQRCodePNGDecodesToTheURI(t *testing.T) {
	uris := []string{
		"otpauth://totp/Acme:ada@example.com?algorithm=SHA1&digits=6&issuer=Acme&period=30&secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
		// A long, non-ASCII issuer and account still fit and survive the round trip.
		"otpauth://totp/" + strings.Repeat("%C3%A9", 40) + ":someone.with.a.long.address@example.com?issuer=" +
			strings.Repeat("%C3%A9", 40) + "&secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
	}
	for _, uri := range uris {
		png, err := QRCodePNG(uri)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
			t.Fatalf("not a PNG: % x", png[:8])
		}
		cfg, _, err := image.DecodeConfig(bytes.NewReader(png))
		if err != nil || cfg.Width != cfg.Height || cfg.Width%modulePixels != 0 || cfg.Width < 200 {
			t.Errorf("PNG is %dx%d (%v), want a square of whole %d-pixel modules, at least 200 wide", cfg.Width, cfg.Height, err, modulePixels)
		}
		if got := mfatest.DecodeQR(t, png); got != uri {
			t.Errorf("QR code holds %q, want %q", got, uri)
		}
	}
}

func TestQRCodePNGRefusesOtherContent(t *testing.T) {
	for _, uri := range []string{"", "https://evil.example/", "otpauth://totp/x?secret=" + strings.Repeat("A", maxQRContent)} {
		if _, err := QRCodePNG(uri); err == nil {
			t.Errorf("QRCodePNG(%.40q...) rendered", uri)
		}
	}
}
