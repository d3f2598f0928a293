package turn

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCredentials(t *testing.T) {
	now := time.Unix(1_800_000_000, 500_000_000)
	u, p := Credentials("s3cret", "d_phone", time.Hour, now)
	exp := time.Unix(1_800_003_600, 0)
	if u != "1800003600:d_phone" {
		t.Fatalf("got %q", u)
	}
	// base64(HMAC-SHA1("s3cret", "1800003600:d_phone")), computed with
	// openssl: printf %s 1800003600:d_phone | openssl dgst -sha1 -hmac s3cret -binary | base64
	if want := "O7uhsQCui0gIc+DlApJdc0VA5qI="; p != want {
		t.Fatalf("password %q, want %q", p, want)
	}
	if _, p2 := Credentials("other", "d_phone", time.Hour, now); p2 == p {
		t.Fatal("the password does not depend on the secret")
	}
	gotExp, dev, err := ParseUsername(u)
	if err != nil || dev != "d_phone" || !gotExp.Equal(exp) {
		t.Fatalf("parsed %v %q %v", gotExp, dev, err)
	}
}

func TestParseUsername(t *testing.T) {
	good := []struct{ in, device string }{
		{"1800003600:d_phone", "d_phone"},
		{"0:d", "d"},
		{"9999999999:a:b", "a:b"}, // the device id is everything after the first ':'
		{"1800003600:Ünïcødé", "Ünïcødé"},
		{"1800000000:" + strings.Repeat("d", 512-11), strings.Repeat("d", 512-11)}, // 512 bytes: the longest
	}
	for _, tc := range good {
		if _, dev, err := ParseUsername(tc.in); err != nil || dev != tc.device {
			t.Errorf("%q: %q, %v", tc.in, dev, err)
		}
	}
	bad := []struct {
		name, in string
		want     error
	}{
		{"empty", "", ErrUsernameFormat},
		{"no colon", "nocolon", ErrUsernameFormat},
		{"no expiry", ":d", ErrUsernameFormat},
		{"letters", "abc:d", ErrUsernameFormat},
		{"negative", "-5:d", ErrUsernameFormat},
		{"plus sign", "+5:d", ErrUsernameFormat},
		{"spaces", " 5:d", ErrUsernameFormat},
		{"hex", "0x10:d", ErrUsernameFormat},
		{"overflow", "99999999999999999999:d", ErrUsernameFormat},
		{"eleven digits", "10000000000:d", ErrUsernameFormat},
		{"no device", "1800000000:", ErrUsernameFormat},
		{"control character", "1800000000:d\x00", ErrUsernameFormat},
		{"invalid utf-8", "1800000000:\xff", ErrUsernameFormat},
		{"513 bytes", "1800000000:" + strings.Repeat("d", 513-11), ErrUsernameTooLong},
		{"64 KiB", strings.Repeat("9", 64<<10) + ":d", ErrUsernameTooLong},
		{"64 KiB device", "1800000000:" + strings.Repeat("d", 64<<10), ErrUsernameTooLong},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := ParseUsername(tc.in); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func FuzzParseUsername(f *testing.F) {
	for _, s := range []string{"1800003600:d_phone", "x", ":", "1:a:b", strings.Repeat("1", 100) + ":d", "-1:d", "1:\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, u string) {
		exp, dev, err := ParseUsername(u)
		if err != nil {
			if !errors.Is(err, ErrUsernameFormat) && !errors.Is(err, ErrUsernameTooLong) {
				t.Fatalf("%q: unexpected error %v", u, err)
			}
			return
		}
		if dev == "" || exp.Unix() < 0 || exp.Unix() > 9_999_999_999 || len(u) > maxUsername || !strings.HasSuffix(u, ":"+dev) {
			t.Fatalf("%q accepted as %v %q", u, exp, dev)
		}
		// What Credentials makes, ParseUsername reads back. (An hour before
		// exp, not exp's seconds since 1970 as a ttl: past 2262 those
		// overflow a time.Duration.)
		u2, _ := Credentials("k", dev, time.Hour, exp.Add(-time.Hour))
		if exp3, dev3, err := ParseUsername(u2); len(u2) <= maxUsername && (err != nil || dev3 != dev || !exp3.Equal(exp)) {
			t.Fatalf("round trip of %q: %q %v %v", u, dev3, exp3, err)
		}
	})
}

func TestLoadOrCreateSecret(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s1, err := LoadOrCreateSecret(dir)
	if err != nil || len(s1) != 2*secretBytes {
		t.Fatalf("%q %v", s1, err)
	}
	fi, err := os.Stat(filepath.Join(dir, secretFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v %v", fi.Mode(), err)
	}
	if s2, err := LoadOrCreateSecret(dir); err != nil || s2 != s1 {
		t.Fatalf("second load: %q %v", s2, err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, secretFile+".*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}

	// Racing creators all get the same secret.
	dir2 := t.TempDir()
	var wg sync.WaitGroup
	got := make([]string, 8)
	for i := range got {
		wg.Go(func() {
			s, err := LoadOrCreateSecret(dir2)
			if err != nil {
				t.Error(err)
			}
			got[i] = s
		})
	}
	wg.Wait()
	for _, s := range got {
		if s != got[0] {
			t.Fatalf("racing creators got different secrets: %q", got)
		}
	}

	// An empty file is an error, not silently replaced.
	dir3 := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir3, secretFile), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateSecret(dir3); err == nil {
		t.Fatal("an empty secret file was accepted")
	}
}
