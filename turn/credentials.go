package turn

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the TURN REST convention is HMAC-SHA1; its strength rests on the secret
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of ParseUsername, each with why.
const (
	// maxUsername: RFC 5389 §15.3 allows USERNAME fewer than 513 bytes
	// (RFC 8489 §14.3 tightens it to 509); ours are about 40. Longer input
	// is refused before it is looked at.
	maxUsername = 512
	// maxExpiryDigits: a unix time with more digits is past the year 2286
	// and no credential of ours; it also keeps the number far from int64's
	// overflow.
	maxExpiryDigits = 10
)

// Errors of ParseUsername, to compare with errors.Is.
var (
	// ErrUsernameFormat: the username is not "<unix expiry>:<device id>".
	ErrUsernameFormat = errors.New(`turn: username is not "<unix expiry>:<device id>"`)
	// ErrUsernameTooLong: the username is longer than RFC 8489 allows.
	ErrUsernameTooLong = fmt.Errorf("turn: username longer than %d bytes", maxUsername)
)

// Credentials returns TURN REST credentials for a device (the convention of
// draft-uberti-behave-turn-rest-00 §2.2, which browsers and coturn share):
// username "<unix expiry>:<device id>", password
// base64(HMAC-SHA1(secret, username)). The expiry is now+ttl in whole
// seconds (ParseUsername reads it back): new allocations are refused after
// it.
func Credentials(secret, deviceID string, ttl time.Duration, now time.Time) (username, password string) {
	username = strconv.FormatInt(now.Add(ttl).Unix(), 10) + ":" + deviceID
	return username, restPassword(secret, username)
}

// restPassword is base64(HMAC-SHA1(secret, username)).
func restPassword(secret, username string) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// ParseUsername splits a REST username into its expiry and device id. It
// reads outside input (any TURN client's USERNAME), so it is strict: the
// expiry is 1 to 10 ASCII digits, the device id is non-empty valid UTF-8
// without control characters, and the whole fits RFC 8489's limit. It never
// panics; every refusal wraps ErrUsernameFormat or ErrUsernameTooLong.
func ParseUsername(u string) (expires time.Time, deviceID string, err error) {
	if len(u) > maxUsername {
		return time.Time{}, "", ErrUsernameTooLong
	}
	exp, device, ok := strings.Cut(u, ":")
	if !ok {
		return time.Time{}, "", fmt.Errorf("%w: no ':'", ErrUsernameFormat)
	}
	if exp == "" || len(exp) > maxExpiryDigits || strings.ContainsFunc(exp, func(r rune) bool { return r < '0' || r > '9' }) {
		return time.Time{}, "", fmt.Errorf("%w: expiry %.20q is not a unix time", ErrUsernameFormat, exp)
	}
	if device == "" {
		return time.Time{}, "", fmt.Errorf("%w: empty device id", ErrUsernameFormat)
	}
	if !utf8.ValidString(device) || strings.ContainsFunc(device, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return time.Time{}, "", fmt.Errorf("%w: device id is not printable UTF-8", ErrUsernameFormat)
	}
	secs, err := strconv.ParseInt(exp, 10, 64) // at most 10 digits: cannot overflow
	if err != nil {
		return time.Time{}, "", fmt.Errorf("%w: expiry: %v", ErrUsernameFormat, err)
	}
	return time.Unix(secs, 0), device, nil
}
