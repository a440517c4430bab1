package secretbox

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// ParseKeys reads master keys in base64 (standard or URL alphabet, padded or not) separated by
// commas, whitespace or newlines; the first is current. An empty entry between commas is an
// error rather than skipped: it usually means a templated variable was empty, and skipping it
// could silently make another key current. Errors name the entry by position and never quote it.
func ParseKeys(s string) ([][]byte, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("no master key given")
	}
	var keys [][]byte
	for _, part := range strings.Split(s, ",") {
		entries := strings.Fields(part)
		if len(entries) == 0 {
			return nil, fmt.Errorf("entry %d is empty (two commas in a row, or a comma at the start or end)", len(keys)+1)
		}
		for _, e := range entries {
			key, err := decodeKey(e)
			if err != nil {
				return nil, fmt.Errorf("entry %d %w; %s", len(keys)+1, err, keyHint)
			}
			keys = append(keys, key)
		}
	}
	return keys, nil
}

// keyHint tells an operator what a key looks like and how to make one.
const keyHint = "a master key is 32 random bytes in base64, e.g. from `openssl rand -base64 32`"

// keyEncodings are the base64 forms a key may be written in. At most one can decode a given
// string to a result, and the alphabets agree where they overlap, so the order does not matter.
var keyEncodings = []*base64.Encoding{
	base64.StdEncoding.Strict(), base64.RawStdEncoding.Strict(),
	base64.URLEncoding.Strict(), base64.RawURLEncoding.Strict(),
}

// decodeKey decodes one base64 master key. Its errors complete a sentence that starts with the
// key's position ("entry 2 ...") and never include the input.
func decodeKey(s string) ([]byte, error) {
	for _, enc := range keyEncodings {
		key, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(key) != KeySize {
			return nil, fmt.Errorf("decodes to %d bytes, not %d", len(key), KeySize)
		}
		return key, nil
	}
	return nil, errors.New("is not valid base64")
}

// keyFile is a key file as written (one key per line, '#' comments and blank lines ignored),
// kept line by line so that rewriting it changes only the key lines.
type keyFile struct {
	lines    []string
	keys     [][]byte
	keyLines []int // index in lines of each key, in order
}

// parseKeyFile parses a key file's content. A '#' starts a comment anywhere on a line (base64
// never contains one). Errors name the line and never quote it.
func parseKeyFile(data []byte) (keyFile, error) {
	text := strings.TrimSuffix(string(data), "\n")
	var kf keyFile
	if text != "" {
		kf.lines = strings.Split(text, "\n")
	}
	for i, line := range kf.lines {
		entry, _, _ := strings.Cut(line, "#")
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		key, err := decodeKey(entry)
		if err != nil {
			return keyFile{}, fmt.Errorf("line %d %w; write one key per line (%s)", i+1, err, keyHint)
		}
		kf.keys = append(kf.keys, key)
		kf.keyLines = append(kf.keyLines, i)
	}
	if len(kf.keys) == 0 {
		return keyFile{}, errors.New("holds no master key")
	}
	return kf, nil
}

// content returns the file's text with one line per element and a final newline.
func (kf keyFile) content() []byte {
	return []byte(strings.Join(kf.lines, "\n") + "\n")
}
