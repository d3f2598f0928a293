package accounts

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/kv"
)

// BenchmarkEndSessionsAmong: a person's sessions ended (their account
// deleted, as removing a building's residents does for each of them, or a
// password changed) while 100,000 other sessions are signed in. Each op
// signs the person in and deletes their credential, which ends their
// sessions. On bbolt and on Redis.
func BenchmarkEndSessionsAmong(b *testing.B) {
	const others = 100000
	for _, backend := range []struct {
		name string
		s    func(b *testing.B) *Store
	}{{"bolt", func(b *testing.B) *Store { return newBoltStoreAt(b, time.Now) }}, {"redis", func(b *testing.B) *Store { return newRedisStore(b) }}} {
		b.Run(backend.name, func(b *testing.B) {
			s := backend.s(b)
			ctx := context.Background()
			expires := time.Now().Add(AppSessionTTL).UTC()
			for first := 0; first < others; first += 5000 {
				err := s.update(ctx, func(tx kv.Tx) error {
					for i := first; i < first+5000; i++ {
						_, hash := directory.NewToken()
						sess := Session{Kind: SessionApp, Subject: fmt.Sprintf("u_other%06d", i), CSRF: "x", Expires: expires}
						if err := putJSON(tx, tSessions, hashKey(hash), sess); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			start := time.Now()
			if err := s.IndexSessions(ctx); err != nil { // once, as a node does at start
				b.Fatal(err)
			}
			b.Logf("%d sessions indexed in %v", others, time.Since(start))
			cred := AppCredential{PasswordHash: "not a real hash", Changed: time.Now().UTC()}
			for b.Loop() {
				if err := s.update(ctx, func(tx kv.Tx) error { return putJSON(tx, tAppCreds, "u_leaving", cred) }); err != nil {
					b.Fatal(err)
				}
				tok, _, err := s.SignIn(ctx, SessionApp, "u_leaving", cred.PasswordHash)
				if err != nil {
					b.Fatal(err)
				}
				if err := s.DeleteAppCredential(ctx, "u_leaving"); err != nil {
					b.Fatal(err)
				}
				if _, err := s.SessionByToken(ctx, tok); err == nil {
					b.Fatal("the session outlived its credential")
				}
			}
		})
	}
}
