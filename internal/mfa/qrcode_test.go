package mfa

import (
	"bytes"
	"image"
	"image/color"
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
		checkWholeModules(t, png)
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

// checkWholeModules checks that every modulePixels-square block of the image is of one colour,
// black or white, and that the border of 4 modules that ISO/IEC 18004 asks for is white.
func checkWholeModules(t *testing.T, png []byte) {
	t.Helper()
	img, _, err := image.Decode(bytes.NewReader(png))
	if err != nil {
		t.Fatal(err)
	}
	dark := func(x, y int) (bool, bool) {
		g := color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y
		return g == 0, g == 0 || g == 0xff
	}
	side := img.Bounds().Dx() / modulePixels
	for my := range side {
		for mx := range side {
			want, _ := dark(mx*modulePixels, my*modulePixels)
			border := mx < 4 || my < 4 || mx >= side-4 || my >= side-4
			if border && want {
				t.Fatalf("module (%d, %d) of the quiet zone is dark", mx, my)
			}
			for py := my * modulePixels; py < (my+1)*modulePixels; py++ {
				for px := mx * modulePixels; px < (mx+1)*modulePixels; px++ {
					if d, pure := dark(px, py); d != want || !pure {
						t.Fatalf("pixel (%d, %d) is not of its module's colour, black or white", px, py)
					}
				}
			}
		}
	}
}

// BenchmarkQRCodePNG measures rendering a typical otpauth URI, and reports the PNG's size.
func BenchmarkQRCodePNG(b *testing.B) {
	const uri = "otpauth://totp/Acme:ada@example.com?algorithm=SHA1&digits=6&issuer=Acme&period=30&secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	var size int
	for b.Loop() {
		png, err := QRCodePNG(uri)
		if err != nil {
			b.Fatal(err)
		}
		size = len(png)
	}
	b.ReportMetric(float64(size), "bytes/png")
}
