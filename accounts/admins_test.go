package accounts

import (
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/kv"
	"github.com/foyer-intercom/foyer/internal/redistest"
)

// TestInviteAdmin: an invited account and its role are made together or
// not at all, and its temporary password lasts until the admin chooses
// one: sent again it voids the last one and its sessions; once chosen, it
// cannot be sent again and the session that chose it may do everything.
func TestInviteAdmin(t *testing.T) {
	s := newBoltStore(t)
	ctx := context.Background()

	for _, c := range []struct{ email, role string }{{"not-an-address", "viewer"}, {"new@example.com", "superuser"}} {
		if _, _, err := s.InviteAdmin(ctx, c.email, "s1", Role(c.role)); !errors.Is(err, ErrInvalid) {
			t.Fatalf("InviteAdmin(%q, %q): %v, want ErrInvalid", c.email, c.role, err)
		}
	}
	if _, err := s.AdminByEmail(ctx, "new@example.com"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused invitation made an account: %v", err)
	}
	taken, err := s.CreateAdmin(ctx, "taken@example.com", "a password of theirs", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.InviteAdmin(ctx, "Taken@example.com", "s1", RoleAdmin); !errors.Is(err, ErrConflict) {
		t.Fatalf("inviting an existing account: %v, want ErrConflict", err)
	}
	if roles, _ := s.RolesOf(ctx, taken.ID); len(roles) != 0 {
		t.Fatalf("a refused invitation granted %v to the existing account", roles)
	}

	a, temp, err := s.InviteAdmin(ctx, "New@Example.com", "s1", RoleInstaller)
	if err != nil {
		t.Fatal(err)
	}
	if a.Email != "new@example.com" || a.Operator || !a.TemporaryPassword {
		t.Fatalf("invited account %+v", a)
	}
	if roles, _ := s.RolesOf(ctx, a.ID); roles["s1"] != RoleInstaller {
		t.Fatalf("invited account's roles %v", roles)
	}
	got, err := s.LoginAdmin(ctx, "new@example.com", temp)
	if err != nil || !got.TemporaryPassword {
		t.Fatalf("signing in with the temporary password: %+v, %v", got, err)
	}
	old, sess, err := s.SignIn(ctx, SessionAdmin, a.ID, got.PasswordHash)
	if err != nil || !sess.MustChangePassword {
		t.Fatalf("the session of the temporary password: %+v, %v; want one that must choose a password", sess, err)
	}
	again, err := s.SetAdminTempPassword(ctx, a.ID, "s1")
	if err != nil || again == temp {
		t.Fatalf("sent again: %v (same password: %v)", err, again == temp)
	}
	if _, err := s.LoginAdmin(ctx, "new@example.com", temp); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("the earlier temporary password: %v, want ErrBadCredentials", err)
	}
	if _, err := s.SessionByToken(ctx, old); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a session of the earlier temporary password: %v, want it ended", err)
	}

	got, err = s.LoginAdmin(ctx, "new@example.com", again)
	if err != nil {
		t.Fatal(err)
	}
	keep, _, err := s.SignIn(ctx, SessionAdmin, a.ID, got.PasswordHash)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetAdminPassword(ctx, a.ID, "one of my own", keep); err != nil {
		t.Fatal(err)
	}
	if sess, err := s.SessionByToken(ctx, keep); err != nil || sess.MustChangePassword {
		t.Fatalf("the session that chose the password: %+v, %v; want it free", sess, err)
	}
	if got, err := s.LoginAdmin(ctx, "new@example.com", "one of my own"); err != nil || got.TemporaryPassword {
		t.Fatalf("signing in with the chosen password: %+v, %v", got, err)
	}
	if _, err := s.SetAdminTempPassword(ctx, a.ID, "s1"); !errors.Is(err, ErrConflict) {
		t.Fatalf("sending the invitation after a password was chosen: %v, want ErrConflict", err)
	}
}

// TestTransferNeedsTheOwner: ownership moves only from the site's owner
// (the API reads the owner first; a change in between must not let
// another account hand the site on), and the refusal changes no role.
func TestTransferNeedsTheOwner(t *testing.T) {
	s := newBoltStore(t)
	ctx := context.Background()
	for admin, role := range map[string]Role{"owner": RoleOwner, "admin": RoleAdmin} {
		if err := s.SetRole(ctx, "s1", admin, role); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.TransferOwnership(ctx, "s1", "admin", "newcomer"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a transfer from an admin: %v, want ErrInvalid", err)
	}
	roles, err := s.SiteRoles(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if len(roles) != 2 || roles["owner"] != RoleOwner || roles["admin"] != RoleAdmin {
		t.Fatalf("roles after a refused transfer: %v", roles)
	}
	if err := s.TransferOwnership(ctx, "s1", "owner", "admin"); err != nil {
		t.Fatal(err)
	}
	if roles, _ := s.SiteRoles(ctx, "s1"); roles["admin"] != RoleOwner || roles["owner"] != RoleAdmin {
		t.Fatalf("roles after the owner's transfer: %v", roles)
	}
}

// TestAdminPasswordChangeVoidsResetLinks: an admin who chooses a new
// password (their mailbox may be someone else's now) leaves no reset link
// working.
func TestAdminPasswordChangeVoidsResetLinks(t *testing.T) {
	s := newBoltStore(t)
	ctx := context.Background()
	a, err := s.CreateAdmin(ctx, "linked@example.com", "a password of mine", false)
	if err != nil {
		t.Fatal(err)
	}
	link, err := s.NewResetToken(ctx, ResetAdmin, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetAdminPassword(ctx, a.ID, "a new password of mine", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ResetAdminPassword(ctx, link, "someone else's choice"); !errors.Is(err, ErrExpired) {
		t.Fatalf("a reset link from before the change: %v, want ErrExpired", err)
	}
	if _, err := s.LoginAdmin(ctx, "linked@example.com", "a new password of mine"); err != nil {
		t.Fatalf("the new password: %v", err)
	}
}

// TestStoreFailureIsNoAnswer: a read of the shared store (Redis) that
// fails is reported as the failure it is, never as an answer about the
// record: not "only the site's owner can transfer it" to the owner, not a
// code deleted (or "no such code") unread, not "no such account". The API
// then answers that it failed (500) instead of a refusal, or a success,
// that is wrong. The reads fail inside the transaction, after its WATCH, as when
// Redis goes away mid-request: the client's Redis user may not run HGET.
func TestStoreFailureIsNoAnswer(t *testing.T) {
	srv := redistest.StartServer(t)
	ctx := context.Background()
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = admin.Close() })
	if err := New(kv.NewRedis(admin), time.Now).SetRole(ctx, "s1", "owner", RoleOwner); err != nil {
		t.Fatal(err)
	}
	first, err := New(kv.NewRedis(admin), time.Now).CreateAdmin(ctx, "taken@example.com", "a long enough password", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Do(ctx, "ACL", "SETUSER", "noread", "on", ">noread", "~*", "&*", "+@all", "-hget").Err(); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, Username: "noread", Password: "noread", MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	s := New(kv.NewRedis(rdb), time.Now)
	for what, err := range map[string]error{
		"a transfer by the owner": s.TransferOwnership(ctx, "s1", "owner", "newcomer"),
		"deleting a code":         s.DeleteCode(ctx, "s1", "c_1"),
		"an account for an e-mail that has one": func() error {
			_, err := s.CreateAdmin(ctx, "taken@example.com", "another long password", false)
			return err
		}(),
		"reading an account": func() error {
			_, err := s.AdminByEmail(ctx, "owner@example.com")
			return err
		}(),
	} {
		if err == nil || errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotFound) {
			t.Errorf("%s with its reads failing: %v, want the store's failure", what, err)
		}
	}
	if roles, err := New(kv.NewRedis(admin), time.Now).SiteRoles(ctx, "s1"); err != nil || len(roles) != 1 || roles["owner"] != RoleOwner {
		t.Errorf("roles after the failed transfer: %v, %v; want the owner's alone", roles, err)
	}
	if a, err := New(kv.NewRedis(admin), time.Now).AdminByEmail(ctx, "taken@example.com"); err != nil || a.ID != first.ID {
		t.Errorf("the account of taken@example.com after the failed creation: %+v, %v; want the first one", a, err)
	}
}

// TestDeleteAdmin: deleting an account takes its roles on every site, its
// sessions, its reset links and its e-mail with it, in one transaction,
// and returns the roles it had; an operator's account and a site owner's
// are refused whole. On the embedded store and on Redis.
func TestDeleteAdmin(t *testing.T) {
	onEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		op, err := s.CreateAdmin(ctx, "op@example.com", "a long enough password", true)
		if err != nil {
			t.Fatal(err)
		}
		owner, err := s.CreateAdmin(ctx, "owner@example.com", "a long enough password", false)
		if err != nil {
			t.Fatal(err)
		}
		mgr, err := s.CreateAdmin(ctx, "mgr@example.com", "a long enough password", false)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []struct {
			site  directory.SiteID
			admin string
			role  Role
		}{{"s1", owner.ID, RoleOwner}, {"s1", mgr.ID, RoleAdmin}, {"s2", mgr.ID, RoleViewer}, {"s2", owner.ID, RoleAdmin}} {
			if err := s.SetRole(ctx, r.site, r.admin, r.role); err != nil {
				t.Fatal(err)
			}
		}
		tok, _, err := s.SignIn(ctx, SessionAdmin, mgr.ID, mgr.PasswordHash)
		if err != nil {
			t.Fatal(err)
		}
		reset, err := s.NewResetToken(ctx, ResetAdmin, mgr.ID)
		if err != nil {
			t.Fatal(err)
		}

		for _, refused := range []Admin{op, owner} {
			if _, err := s.DeleteAdmin(ctx, refused.ID); !errors.Is(err, ErrConflict) {
				t.Fatalf("deleting %s: %v, want ErrConflict", refused.Email, err)
			}
			if roles, err := s.RolesOf(ctx, refused.ID); err != nil || (refused.ID == owner.ID && len(roles) != 2) {
				t.Fatalf("%s's roles after a refused delete: %v, %v", refused.Email, roles, err)
			}
		}
		roles, err := s.DeleteAdmin(ctx, mgr.ID)
		if err != nil || len(roles) != 2 || roles["s1"] != RoleAdmin || roles["s2"] != RoleViewer {
			t.Fatalf("DeleteAdmin: %v, %v; want its admin role on s1 and viewer on s2", roles, err)
		}
		if _, err := s.Admin(ctx, mgr.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("the account after its delete: %v", err)
		}
		if _, err := s.AdminByEmail(ctx, "mgr@example.com"); !errors.Is(err, ErrNotFound) {
			t.Errorf("the account by e-mail after its delete: %v", err)
		}
		if _, err := s.SessionByToken(ctx, tok); !errors.Is(err, ErrNotFound) {
			t.Errorf("its session after the delete: %v", err)
		}
		if _, err := s.ResetAdminPassword(ctx, reset, "another long password"); err == nil {
			t.Error("its reset link worked after the delete")
		}
		all, err := s.AllRoles(ctx)
		if err != nil || len(all[mgr.ID]) != 0 || len(all[owner.ID]) != 2 {
			t.Errorf("roles after the delete: %v, %v", all, err)
		}
		for _, site := range []directory.SiteID{"s1", "s2"} {
			if r, _ := s.SiteRoles(ctx, site); r[mgr.ID] != "" {
				t.Errorf("site %s still gives the deleted account %q", site, r[mgr.ID])
			}
		}
		if admins, err := s.Admins(ctx); err != nil || len(admins) != 2 {
			t.Errorf("accounts after the delete: %v, %v; want the operator and the owner", admins, err)
		}
	})
}

// TestTablesNamesEveryTable: Tables, which a Redis store's parts are moved
// by, names every table constant of accounts.go.
func TestTablesNamesEveryTable(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "accounts.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var declared []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			for i, name := range spec.(*ast.ValueSpec).Names {
				if lit, ok := spec.(*ast.ValueSpec).Values[i].(*ast.BasicLit); ok && strings.HasPrefix(name.Name, "t") && lit.Kind == token.STRING {
					v, _ := strconv.Unquote(lit.Value)
					declared = append(declared, v)
				}
			}
		}
	}
	listed := Tables()
	slices.Sort(declared)
	slices.Sort(listed)
	if len(declared) < 10 || !slices.Equal(declared, listed) {
		t.Fatalf("tables declared %v, Tables() %v", declared, listed)
	}
}
