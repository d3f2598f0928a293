package accounts

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/foyer-intercom/foyer/directory"
)

func TestPasswordHash(t *testing.T) {
	h := HashPassword("correct horse battery")
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q does not carry the Argon2id parameters (19 MiB, 2 iterations, 1 lane)", h)
	}
	if h == HashPassword("correct horse battery") {
		t.Fatal("two hashes of one password are equal: the salt is missing")
	}
	if !VerifyPassword(h, "correct horse battery") {
		t.Fatal("the right password does not verify")
	}
	parts := strings.Split(h, "$")
	for name, bad := range map[string]string{
		"wrong password": "",
		"tampered key":   strings.Join(append(parts[:5:5], "AAAA"+parts[5][4:]), "$"),
		"tampered salt":  strings.Join(append(append(parts[:4:4], "AAAA"+parts[4][4:]), parts[5]), "$"),
		"other scheme":   strings.Replace(h, "argon2id", "argon2i", 1),
		"garbage":        "$argon2id$v=19$m=x$y$z",
		"empty":          "",
	} {
		hash, pw := bad, "correct horse battery"
		if name == "wrong password" {
			hash, pw = h, "correct horse batterz"
		}
		if VerifyPassword(hash, pw) {
			t.Errorf("%s verifies", name)
		}
	}
	if err := CheckPassword("short"); err == nil {
		t.Error("a 5-character password was accepted")
	}
	if err := CheckPassword(strings.Repeat("x", MaxPasswordLen+1)); err == nil {
		t.Error("an over-long password was accepted")
	}
}

func TestTempPassword(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		p := NewTempPassword()
		if len(p) != 16 || strings.ContainsAny(p, "0O1lI") || seen[p] {
			t.Fatalf("temporary password %q: want 16 characters without look-alikes, never repeated", p)
		}
		seen[p] = true
	}
}

func TestCodeSchedule(t *testing.T) {
	mon9 := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC) // a Monday
	until := mon9.Add(time.Hour)
	code := AccessCode{PIN: "1234", User: "u", TimeZone: "Europe/Amsterdam",
		Schedule: []Window{{Days: []time.Weekday{time.Monday}, From: 9 * 60, To: 17 * 60}}, ValidUntil: &until}
	for _, tc := range []struct {
		at   time.Time
		want bool
	}{
		{mon9, true},                      // 10:00 in Amsterdam, Monday
		{mon9.Add(-2 * time.Hour), false}, // 08:00 there: before the window
		{mon9.Add(time.Hour), false},      // valid_until is exclusive
		{mon9.Add(24 * time.Hour), false}, // Tuesday
	} {
		if got := code.activeAt(tc.at); got != tc.want {
			t.Errorf("active at %v: %v, want %v", tc.at, got, tc.want)
		}
	}
	used := code
	used.Used = true
	if used.activeAt(mon9) {
		t.Error("a used one-time code is active")
	}
}

// TestPasswordChecksWaitForSlot: a login runs Argon2id (19 MiB) only in one
// of the few hashing slots. With every slot taken it waits, and gives up
// when its context ends or after hashWait (ErrBusy), without counting an
// attempt against the account; once a slot is free it goes ahead.
func TestPasswordChecksWaitForSlot(t *testing.T) {
	s := newBoltStore(t)
	ctx := context.Background()
	if _, err := s.CreateAdmin(ctx, "slots@example.com", "a password of mine", false); err != nil {
		t.Fatal(err)
	}
	held := cap(hashSlots)
	for range held {
		hashSlots <- struct{}{}
	}
	t.Cleanup(func() {
		for ; held > 0; held-- {
			<-hashSlots
		}
	})
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := s.LoginAdmin(short, "slots@example.com", "a wrong one"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a login with every hashing slot taken: %v, want it to wait until its deadline", err)
	}
	// Without an earlier deadline of its own, it waits hashWait (3 s) and
	// is refused as busy (503).
	busy, cancelBusy := context.WithTimeout(ctx, 5*time.Second)
	defer cancelBusy()
	if _, err := s.LoginAdmin(busy, "slots@example.com", "a wrong one"); !errors.Is(err, ErrBusy) {
		t.Fatalf("a login with every hashing slot taken for 5 s: %v, want ErrBusy after 3 s", err)
	}
	<-hashSlots
	held--
	// With one slot free, logins go ahead; the one that waited counted no
	// attempt: after the five free wrong guesses the right password works.
	for i := range throttleFree {
		if _, err := s.LoginAdmin(ctx, "slots@example.com", "wrong"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("wrong guess %d: %v, want bad credentials", i, err)
		}
	}
	if _, err := s.LoginAdmin(ctx, "slots@example.com", "a password of mine"); err != nil {
		t.Fatalf("the right password after five wrong ones: %v", err)
	}
}

// TestLoginLockCapped: each wrong password past the free ones locks the
// account for twice as long, but never for more than throttleMax: someone
// who keeps guessing cannot shut its owner out for days.
func TestLoginLockCapped(t *testing.T) {
	s, clock := newClockedStore(t)
	ctx := context.Background()
	if _, err := s.CreateAdmin(ctx, "capped@example.com", "a password of mine", false); err != nil {
		t.Fatal(err)
	}
	var longest time.Duration
	for range 20 {
		_, err := s.LoginAdmin(ctx, "capped@example.com", "a wrong guess")
		var locked *ThrottledError
		if !errors.As(err, &locked) {
			continue
		}
		if locked.RetryAfter > throttleMax {
			t.Fatalf("locked for %v, want at most %v", locked.RetryAfter, throttleMax)
		}
		longest = max(longest, locked.RetryAfter)
		clock.advance(locked.RetryAfter)
	}
	if longest != throttleMax {
		t.Fatalf("the longest lock was %v, want the cap %v reached", longest, throttleMax)
	}
}

// TestDummyHashOpensNothing: a login for an unknown address, or for a user
// who has no password yet, is checked against dummyHash so that it takes
// as long as a real one; the dummy's password (in the source for anyone
// to read) must not sign in.
func TestDummyHashOpensNothing(t *testing.T) {
	const dummy = "not a password of anyone"
	if !VerifyPassword(dummyHash, dummy) {
		t.Fatal("dummyHash is not the hash of the dummy password: the test checks nothing")
	}
	s := newBoltStore(t)
	ctx := context.Background()
	for _, c := range []struct {
		name  string
		login func() error
	}{
		{"unknown admin", func() error { _, err := s.LoginAdmin(ctx, "nobody@example.com", dummy); return err }},
		{"unknown app user", func() error { _, err := s.LoginApp(ctx, "nobody@example.com", "", dummy); return err }},
		{"app user without a password", func() error { _, err := s.LoginApp(ctx, "new@example.com", "u_new", dummy); return err }},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := c.login(); !errors.Is(err, ErrBadCredentials) {
				t.Fatalf("the dummy password: %v, want ErrBadCredentials", err)
			}
		})
	}
}

// TestKeypadLocksAfterFiveWrongCodes: four wrong codes in a row leave the
// keypad open to the right one (which clears the count); a fifth locks it,
// the right code included.
func TestKeypadLocksAfterFiveWrongCodes(t *testing.T) {
	s := newBoltStore(t)
	ctx := context.Background()
	gate := directory.Device{ID: "gate", Site: "s1"}
	if _, err := s.PutCode(ctx, AccessCode{Site: "s1", User: "u", PIN: "4711", Doors: []directory.DeviceID{"gate"}}); err != nil {
		t.Fatal(err)
	}
	wrong := func(n int) {
		t.Helper()
		for i := range n {
			if _, err := s.CheckPin(ctx, gate, "0000"); !errors.Is(err, ErrBadCredentials) {
				t.Fatalf("wrong code %d of %d: %v, want ErrBadCredentials", i+1, n, err)
			}
		}
	}
	wrong(keypadFree - 1)
	if _, err := s.CheckPin(ctx, gate, "4711"); err != nil {
		t.Fatalf("the right code after %d wrong ones: %v", keypadFree-1, err)
	}
	wrong(keypadFree)
	var locked *ThrottledError
	if _, err := s.CheckPin(ctx, gate, "4711"); !errors.As(err, &locked) {
		t.Fatalf("the right code after %d wrong ones: %v, want the keypad locked", keypadFree, err)
	}
}

// TestNewProvisioningCodeVoidsEarlier: a device's new provisioning code
// (the installer lost or showed the first) makes its earlier one stop
// working; another device's code is untouched.
func TestNewProvisioningCodeVoidsEarlier(t *testing.T) {
	s := newBoltStore(t)
	ctx := context.Background()
	first, _, err := s.NewProvisioningCode(ctx, "d1", "s1")
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := s.NewProvisioningCode(ctx, "d2", "s1")
	if err != nil {
		t.Fatal(err)
	}
	second, _, err := s.NewProvisioningCode(ctx, "d1", "s1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SpendProvisioningCode(ctx, first); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the earlier code: %v, want ErrNotFound", err)
	}
	for code, device := range map[string]directory.DeviceID{second: "d1", other: "d2"} {
		if p, err := s.SpendProvisioningCode(ctx, code); err != nil || p.Device != device {
			t.Fatalf("code of %s: %+v, %v", device, p, err)
		}
	}
}
