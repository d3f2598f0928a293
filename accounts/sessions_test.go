package accounts

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/kv"
)

// scanLog is a kv.Store that records the table and prefix of every scan.
type scanLog struct {
	kv.Store
	mu    sync.Mutex
	scans []string
}

func (l *scanLog) View(ctx context.Context, fn func(kv.Tx) error) error {
	return l.Store.View(ctx, func(tx kv.Tx) error { return fn(scanLogTx{tx, l}) })
}

func (l *scanLog) Update(ctx context.Context, fn func(kv.Tx) error) error {
	return l.Store.Update(ctx, func(tx kv.Tx) error { return fn(scanLogTx{tx, l}) })
}

// take returns the scans recorded since the last take.
func (l *scanLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.scans
	l.scans = nil
	return s
}

type scanLogTx struct {
	kv.Tx
	l *scanLog
}

func (t scanLogTx) Scan(table, prefix string, fn func(string, []byte) error) error {
	t.l.mu.Lock()
	t.l.scans = append(t.l.scans, table+" "+prefix)
	t.l.mu.Unlock()
	return t.Tx.Scan(table, prefix, fn)
}

// TestSessionsIndexedBySubject: ending a person's sessions (their account
// deleted, a password changed) ends every one of theirs, those an earlier
// version stored without an index entry too, and nobody else's, nor their
// sessions of the other kind; once the earlier sessions are indexed it
// reads that person's entries alone, not every session. Logging out and
// the expiry purge take the entries with the sessions. On bbolt and Redis.
func TestSessionsIndexedBySubject(t *testing.T) {
	onEachBackend(t, func(t *testing.T, base *Store) {
		ctx := context.Background()
		log := &scanLog{Store: base.kv}
		s := New(log, base.now)
		expires := time.Now().Add(AppSessionTTL).UTC()
		// Sessions as an earlier version stored them: no index entries.
		old := map[string]Session{}
		for _, sess := range []Session{
			{Kind: SessionApp, Subject: "u_anna"}, {Kind: SessionApp, Subject: "u_anna"},
			{Kind: SessionApp, Subject: "u_bram"}, {Kind: SessionAdmin, Subject: "u_anna"},
		} {
			tok, _ := directory.NewToken()
			sess.CSRF, sess.Expires = "x", expires
			old[tok] = sess
			if err := s.update(ctx, func(tx kv.Tx) error { return putJSON(tx, tSessions, sessionKey(tok), sess) }); err != nil {
				t.Fatal(err)
			}
		}
		signIn := func(user string) string {
			t.Helper()
			cred := AppCredential{PasswordHash: "hash of " + user}
			if err := s.update(ctx, func(tx kv.Tx) error { return putJSON(tx, tAppCreds, user, cred) }); err != nil {
				t.Fatal(err)
			}
			tok, _, err := s.SignIn(ctx, SessionApp, user, cred.PasswordHash)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
		live := func(tok string) bool {
			t.Helper()
			_, err := s.SessionByToken(ctx, tok)
			if err != nil && !errors.Is(err, ErrNotFound) {
				t.Fatal(err)
			}
			return err == nil
		}
		annaNew := signIn("u_anna")
		log.take()

		if err := s.DeleteAppCredential(ctx, "u_anna"); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(log.take(), tSessions+" ") {
			t.Fatal("the earlier version's sessions were not read to index them")
		}
		for tok, sess := range old {
			want := !(sess.Kind == SessionApp && sess.Subject == "u_anna")
			if live(tok) != want {
				t.Fatalf("earlier %s session of %s: live %v, want %v", sess.Kind, sess.Subject, !want, want)
			}
		}
		if live(annaNew) {
			t.Fatal("anna's new session outlived her credential")
		}

		// Indexed now: ending Bram's sessions reads his entries alone.
		bramNew := signIn("u_bram")
		log.take()
		if err := s.DeleteAppCredential(ctx, "u_bram"); err != nil {
			t.Fatal(err)
		}
		scans := log.take()
		if slices.ContainsFunc(scans, func(sc string) bool { return sc == tSessions+" " || sc == tSubjectSessions+" " }) {
			t.Fatalf("ending one person's sessions scanned %q: every session read", scans)
		}
		if live(bramNew) {
			t.Fatal("bram's session outlived his credential")
		}
		for tok, sess := range old {
			if sess.Subject == "u_bram" && live(tok) {
				t.Fatal("bram's earlier session outlived his credential")
			}
		}

		// Logging out, and the purge of expired sessions, take the entries.
		carla, dirk := signIn("u_carla"), signIn("u_dirk")
		if err := s.EndSession(ctx, carla); err != nil {
			t.Fatal(err)
		}
		later := New(log, func() time.Time { return time.Now().Add(AppSessionTTL + time.Hour) })
		if err := later.PurgeExpired(ctx); err != nil {
			t.Fatal(err)
		}
		var entries []string
		if err := s.view(ctx, func(tx kv.Tx) error {
			return tx.Scan(tSubjectSessions, "", func(k string, _ []byte) error { entries = append(entries, k); return nil })
		}); err != nil {
			t.Fatal(err)
		}
		if len(entries) != 0 || live(dirk) {
			t.Fatalf("after a logout and the purge: index entries %q, dirk's session live %v; want none", entries, live(dirk))
		}
		if err := s.EndSession(ctx, carla); err != nil {
			t.Fatalf("logging out twice: %v", err)
		}
	})
}

// TestIndexSessionsInParts: the start-up pass indexes an earlier version's
// sessions a 16th at a time; afterwards ending a person's sessions ends
// every one of theirs, reading their entries alone.
func TestIndexSessionsInParts(t *testing.T) {
	onEachBackend(t, func(t *testing.T, base *Store) {
		ctx := context.Background()
		log := &scanLog{Store: base.kv}
		s := New(log, base.now)
		toks := map[string]string{} // token → subject
		firsts := map[byte]bool{}   // the first hex digits of their keys
		for i := 0; len(firsts) < 16; i++ {
			tok, _ := directory.NewToken()
			firsts[sessionKey(tok)[0]] = true
			sess := Session{Kind: SessionApp, Subject: []string{"u_anna", "u_bram"}[i%2], CSRF: "x", Expires: time.Now().Add(time.Hour)}
			toks[tok] = sess.Subject
			if err := s.update(ctx, func(tx kv.Tx) error { return putJSON(tx, tSessions, sessionKey(tok), sess) }); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.IndexSessions(ctx); err != nil {
			t.Fatal(err)
		}
		log.take()
		if err := s.DeleteAppCredential(ctx, "u_anna"); err != nil {
			t.Fatal(err)
		}
		if scans := log.take(); slices.Contains(scans, tSessions+" ") {
			t.Fatalf("after the start-up pass, ending one person's sessions scanned %q", scans)
		}
		for tok, who := range toks {
			_, err := s.SessionByToken(ctx, tok)
			if live := err == nil; live != (who == "u_bram") {
				t.Fatalf("%s's session: live %v after anna's were ended (%v)", who, live, err)
			}
		}
	})
}
