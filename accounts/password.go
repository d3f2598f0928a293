package accounts

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters: OWASP's minimum (19 MiB, 2 iterations, 1 lane). A
// hash costs about 30 ms of one core, so a login stays quick while an
// offline guess stays expensive. Stored with each hash, so raising them
// later keeps old hashes readable.
const (
	argonMemoryKiB = 19 * 1024
	argonTime      = 2
	argonThreads   = 1
	argonKeyLen    = 32
	argonSaltLen   = 16
)

// Password length limits: a floor against trivial guesses and a ceiling so
// hashing cost cannot be driven by a megabyte-long "password".
const (
	MinPasswordLen = 10
	MaxPasswordLen = 256
)

// ErrWeakPassword wraps a password that breaks the length rules.
var ErrWeakPassword = errors.New("password too weak")

// CheckPassword says why a new password is not acceptable, or nil.
func CheckPassword(p string) error {
	n := utf8.RuneCountInString(p)
	switch {
	case n < MinPasswordLen:
		return fmt.Errorf("%w: at least %d characters", ErrWeakPassword, MinPasswordLen)
	case len(p) > MaxPasswordLen:
		return fmt.Errorf("%w: at most %d bytes", ErrWeakPassword, MaxPasswordLen)
	}
	return nil
}

// HashPassword returns the PHC-format Argon2id hash of p with a fresh salt.
func HashPassword(p string) string {
	salt := make([]byte, argonSaltLen)
	_, _ = rand.Read(salt)
	key := argon2.IDKey([]byte(p), salt, argonTime, argonMemoryKiB, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemoryKiB, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// dummyHash is verified against when an account does not exist, so an
// unknown e-mail costs the same time as a wrong password.
var dummyHash = HashPassword("not a password of anyone")

// Each Argon2id run takes 19 MiB for about 30 ms: hashSlots bounds how many
// run at once, so that a flood of logins (each with another e-mail, so no
// account's throttle stops it) cannot take the server's memory. A caller
// that waits hashWait for a slot gets ErrBusy.
var hashSlots = make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))

const hashWait = 3 * time.Second

// hashSlot waits for a hashing slot and returns its release.
func hashSlot(ctx context.Context) (release func(), err error) {
	t := time.NewTimer(hashWait)
	defer t.Stop()
	select {
	case hashSlots <- struct{}{}:
		return func() { <-hashSlots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return nil, ErrBusy
	}
}

// hashNew hashes a new password holding a hashing slot.
func hashNew(ctx context.Context, password string) (string, error) {
	release, err := hashSlot(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	return HashPassword(password), nil
}

// hashChosen checks a password someone chose (CheckPassword: ErrInvalid
// when it is not good enough) and hashes it as hashNew does.
func hashChosen(ctx context.Context, password string) (string, error) {
	if err := CheckPassword(password); err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return hashNew(ctx, password)
}

// VerifyPassword reports whether p matches the PHC-format hash.
func VerifyPassword(hash, p string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || len(p) > MaxPasswordLen {
		return false
	}
	var version int
	var mem, iters uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &iters, &threads); err != nil {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(p), salt, iters, mem, threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// tempPasswordAlphabet avoids look-alike characters (0/O, 1/l/I), since a
// temporary password is read from an e-mail and typed on a phone.
const tempPasswordAlphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// NewTempPassword returns a random 16-character temporary password (about
// 92 bits).
func NewTempPassword() string {
	b := make([]byte, 16)
	for i := range b {
		b[i] = tempPasswordAlphabet[randIntn(len(tempPasswordAlphabet))]
	}
	return string(b)
}

// randIntn returns a uniform random int in [0, n) from crypto/rand.
func randIntn(n int) int {
	var b [1]byte
	limit := 256 - 256%n
	for {
		_, _ = rand.Read(b[:])
		if int(b[0]) < limit {
			return int(b[0]) % n
		}
	}
}
