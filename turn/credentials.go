package turn

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // the TURN REST convention is HMAC-SHA1; its strength rests on the secret
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// maxUsername bounds what ParseUsername reads; real ones are ~40 bytes.
const maxUsername = 512

// Credentials returns TURN REST credentials for a device (the convention of
// draft-uberti-behave-turn-rest): username "<unix expiry>:<device>",
// password base64(HMAC-SHA1(secret, username)).
func Credentials(secret, device string, ttl time.Duration, now time.Time) (username, password string) {
	username = strconv.FormatInt(now.Add(ttl).Unix(), 10) + ":" + device
	return username, password1(secret, username)
}

func password1(secret, username string) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// ParseUsername splits a REST username into its expiry and device.
func ParseUsername(u string) (time.Time, string, error) {
	if len(u) > maxUsername {
		return time.Time{}, "", fmt.Errorf("turn: username longer than %d bytes", maxUsername)
	}
	exp, device, ok := strings.Cut(u, ":")
	if !ok || device == "" {
		return time.Time{}, "", errors.New(`turn: username is not "<expiry>:<device>"`)
	}
	secs, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || secs < 0 || secs > 1<<40 {
		return time.Time{}, "", fmt.Errorf("turn: username expiry %q is not a reasonable unix time", exp)
	}
	return time.Unix(secs, 0), device, nil
}

// LoadOrCreateSecret returns the secret kept in dir/turn.secret, creating
// a random one (256 bits, mode 0600) the first time.
func LoadOrCreateSecret(dir string) (string, error) {
	path := filepath.Join(dir, "turn.secret")
	if b, err := os.ReadFile(path); err == nil {
		if s := strings.TrimSpace(string(b)); s != "" {
			return s, nil
		}
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	s := hex.EncodeToString(b[:])
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("turn: keeping the secret: %w", err)
	}
	return s, nil
}
