package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/foyer-intercom/foyer/directory"
)

// fillBatch is how many ops FillSite commits per Apply: big enough to
// amortise commits, small enough to keep each transaction modest.
const fillBatch = 30000

// Filled describes a site made by FillSite.
type Filled struct {
	Site directory.Site
	// Tokens[i] authenticates the app device of user i.
	Tokens []directory.TokenHash
}

// FillNumbers is how many call IDs FillSite creates for users: six per ID.
func FillNumbers(users int) int {
	return (users + directory.MaxUsersPerNumber - 1) / directory.MaxUsersPerNumber
}

// FillSite creates a site with users active app users, six per call ID
// (numbers "1", "2", …), each with one app device and a token, in batched
// Apply calls. Tests and benchmarks use it to measure a full site.
func FillSite(tb testing.TB, s directory.Store, name string, users int) Filled {
	tb.Helper()
	ctx := context.Background()
	f := Filled{Site: newSite(name), Tokens: make([]directory.TokenHash, users)}
	ops := []directory.Op{directory.PutSite{Site: f.Site}}
	flush := func(force bool) {
		if len(ops) >= fillBatch || force && len(ops) > 0 {
			if err := s.Apply(ctx, ops...); err != nil {
				tb.Fatalf("FillSite: %v", err)
			}
			ops = ops[:0]
		}
	}
	for i := range users {
		n := directory.Number(fmt.Sprint(i/directory.MaxUsersPerNumber + 1))
		if i%directory.MaxUsersPerNumber == 0 {
			ops = append(ops, directory.PutEntry{Entry: directory.Entry{Site: f.Site.ID, Number: n, Name: "Flat " + string(n)}})
		}
		u := newUser(fmt.Sprintf("user%d@%s.example", i, f.Site.ID))
		d := appDevice(u, "phone")
		f.Tokens[i] = directory.HashToken(fmt.Sprintf("token-%s-%d", f.Site.ID, i))
		ops = append(ops,
			directory.PutUser{User: u},
			directory.PutMembership{Membership: member(f.Site, u, n)},
			directory.PutDevice{Device: d},
			directory.SetDeviceToken{ID: d.ID, Token: f.Tokens[i]},
		)
		flush(false)
	}
	flush(true)
	return f
}
