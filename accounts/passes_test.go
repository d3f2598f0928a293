package accounts

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/kv"
)

// TestPassLimits: a site's people hold at most MaxPassesPerSite live
// visitor passes together and MaxPassesPerPerson each, every one with an
// 8-digit PIN no other code of the site has (an admin's code's PIN too); a
// pass used up or ended makes room.
func TestPassLimits(t *testing.T) {
	s := newBoltStore(t)
	ctx := context.Background()
	until := time.Now().Add(time.Hour)
	pass := func(user string) AccessCode {
		return AccessCode{Site: "s1", User: directory.UserID(user), Doors: []directory.DeviceID{"d_gate"}, ValidUntil: &until, OneTime: true}
	}
	// An admin's code takes a PIN too; passes never get it.
	admins, err := s.PutCode(ctx, AccessCode{Site: "s1", User: "u_admin", PIN: "12345678", Doors: []directory.DeviceID{"d_gate"}})
	if err != nil {
		t.Fatal(err)
	}
	pins := map[string]bool{admins.PIN: true}
	// The site's passes stored at once (PutPass one by one would read the
	// site's codes a thousand times): every person's MaxPassesPerPerson.
	err = s.update(ctx, func(tx kv.Tx) error {
		for i := range MaxPassesPerSite {
			c := pass(fmt.Sprintf("u_%03d", i/MaxPassesPerPerson))
			c.ID, c.Pass, c.Created = directory.NewID("c_"), true, time.Now()
			if c.PIN, err = randomPIN(pins); err != nil {
				return err
			}
			pins[c.PIN] = true
			if err := putJSON(tx, tCodes, "s1/"+c.ID, c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	eightDigits := regexp.MustCompile(`^[0-9]{8}$`)
	newPass := func(user string) AccessCode {
		t.Helper()
		c, err := s.PutPass(ctx, pass(user))
		if err != nil {
			t.Fatalf("%s's pass: %v", user, err)
		}
		if !eightDigits.MatchString(c.PIN) || pins[c.PIN] {
			t.Fatalf("pass PIN %q: want 8 digits no other code of the site has", c.PIN)
		}
		pins[c.PIN] = true
		return c
	}
	if _, err := s.PutPass(ctx, pass("u_000")); !errors.Is(err, directory.ErrLimit) || !strings.Contains(err.Error(), "of yours") {
		t.Fatalf("an 11th pass of one person: %v, want ErrLimit naming theirs", err)
	}
	if _, err := s.PutPass(ctx, pass("u_new")); !errors.Is(err, directory.ErrLimit) || !strings.Contains(err.Error(), "this site has") {
		t.Fatalf("a pass beyond the site's %d: %v, want ErrLimit naming the site's", MaxPassesPerSite, err)
	}
	if _, err := s.PutPass(ctx, AccessCode{Site: "s2", User: "u_new", Doors: []directory.DeviceID{"d_other"}, ValidUntil: &until}); err != nil {
		t.Fatalf("another site's pass: %v", err)
	}

	// One of u_000's used at the keypad: room for one more, theirs or anyone's.
	ps, err := s.Passes(ctx, "s1", "u_000")
	if err != nil || len(ps) != MaxPassesPerPerson {
		t.Fatalf("u_000's passes: %d, %v", len(ps), err)
	}
	if c, err := s.CheckPin(ctx, directory.Device{ID: "d_gate", Site: "s1"}, ps[0].PIN); err != nil || c.ID != ps[0].ID {
		t.Fatalf("the pass at the keypad: %+v, %v", c, err)
	}
	newPass("u_new") // once one is used up
}

// TestPassPINAvoidsTaken: a pass's PIN drawn onto one a code of the site
// has (an admin's code here) is drawn again, inside the transaction that
// stores the pass; a site whose every draw is taken gets ErrConflict
// after 100 draws, not a loop without end.
func TestPassPINAvoidsTaken(t *testing.T) {
	first, second := bytes.Repeat([]byte{0x01}, 8), bytes.Repeat([]byte{0x02}, 8)
	drawn := func(seed []byte) string {
		t.Helper()
		pinSource = bytes.NewReader(seed)
		pin, err := randomPIN(nil)
		if err != nil {
			t.Fatal(err)
		}
		return pin
	}
	taken, free := drawn(first), drawn(second)
	if taken == free {
		t.Fatalf("the two draws give the same PIN %s", taken)
	}
	t.Cleanup(func() { pinSource = rand.Reader })

	s := newBoltStore(t)
	ctx := context.Background()
	if _, err := s.PutCode(ctx, AccessCode{Site: "s1", User: "u_admin", PIN: taken, Doors: []directory.DeviceID{"d_gate"}}); err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(time.Hour)
	pinSource = io.MultiReader(bytes.NewReader(first), bytes.NewReader(second))
	c, err := s.PutPass(ctx, AccessCode{Site: "s1", User: "u_anna", Doors: []directory.DeviceID{"d_gate"}, ValidUntil: &until})
	if err != nil || c.PIN != free {
		t.Fatalf("a pass whose first draw is the admin's PIN %s: %q, %v; want the second draw, %s", taken, c.PIN, err, free)
	}

	pinSource = repeating(first)
	if _, err := s.PutPass(ctx, AccessCode{Site: "s1", User: "u_bram", Doors: []directory.DeviceID{"d_gate"}, ValidUntil: &until}); !errors.Is(err, ErrConflict) {
		t.Fatalf("every draw taken: %v, want ErrConflict", err)
	}
}

// repeating reads b over and over.
type repeating []byte

func (r repeating) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		n += copy(p[n:], r)
	}
	return n, nil
}
