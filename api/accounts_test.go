package api_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/foyer-intercom/foyer/accounts"
)

type accountRow struct {
	ID       string
	Email    string
	Operator bool
	Status   string
	Roles    []struct {
		SiteID   string `json:"site_id"`
		SiteName string `json:"site_name"`
		Role     string
	}
}

// accountsOf lists the admin accounts as an operator sees them, by e-mail.
func accountsOf(op *client) map[string]accountRow {
	var out struct{ Accounts []accountRow }
	op.must(http.StatusOK, "GET", "/v1/admin/accounts", nil, &out)
	rows := make(map[string]accountRow)
	for _, a := range out.Accounts {
		rows[a.Email] = a
	}
	return rows
}

// TestOperatorDeletesAccount: an operator lists every admin account with
// its roles and deletes the account of a manager who left: its sessions
// end, it signs in no more, it is on no site's admins, and both sites it
// had a role on record the deletion in their audit logs. An operator's
// account, a site owner's and an unknown one are refused, and nothing of
// theirs changes.
func TestOperatorDeletesAccount(t *testing.T) {
	e := newEnv(t)
	owner, site := e.siteOwner("Leaving Court")
	op := e.operator()
	other := op.site("Staying Court")
	mgr := e.addAdmin(owner, site, "manager@example.com", "admin")
	op.must(http.StatusNoContent, "PUT", "/v1/sites/"+other+"/admins", map[string]string{"email": "manager@example.com", "role": "viewer"}, nil)

	rows := accountsOf(op)
	m := rows["manager@example.com"]
	if m.Operator || m.Status != "active" || len(m.Roles) != 2 {
		t.Fatalf("the manager's account listed as %+v, want active, no operator, two roles", m)
	}
	for _, r := range m.Roles {
		if want := map[string]string{site: "admin", other: "viewer"}[r.SiteID]; r.Role != want || r.SiteName == "" {
			t.Errorf("the manager's role %+v, want %q with the site's name", r, want)
		}
	}
	if !rows[operatorEmail].Operator || rows["owner@example.com"].Operator {
		t.Fatalf("operator flags: %+v", rows)
	}

	for _, c := range []struct {
		id, code string
		status   int
	}{
		{rows[operatorEmail].ID, "conflict", http.StatusConflict},
		{rows["owner@example.com"].ID, "conflict", http.StatusConflict},
		{"a_nosuchaccount", "not_found", http.StatusNotFound},
	} {
		op.wantError(c.status, c.code, "DELETE", "/v1/admin/accounts/"+c.id, nil)
	}
	owner.must(http.StatusOK, "GET", "/v1/sites/"+site, nil, nil) // the owner's session goes on

	op.must(http.StatusNoContent, "DELETE", "/v1/admin/accounts/"+m.ID, nil, nil)
	mgr.wantError(http.StatusUnauthorized, "unauthenticated", "GET", "/v1/admin/me", nil)
	e.anon().wantError(http.StatusUnauthorized, "bad_credentials", "POST", "/v1/admin/login", map[string]string{"email": "manager@example.com", "password": "a password of theirs"})
	if _, err := e.acc.AdminByEmail(context.Background(), "manager@example.com"); !errors.Is(err, accounts.ErrNotFound) {
		t.Fatalf("the deleted account by its e-mail: %v, want not found", err)
	}
	if _, ok := accountsOf(op)["manager@example.com"]; ok {
		t.Fatal("the deleted account is still listed")
	}
	for _, s := range []string{site, other} {
		if rows := adminRows(op, s); rows["manager@example.com"] != "" {
			t.Errorf("site %s still lists the manager: %v", s, rows)
		}
		var audit struct {
			Events []struct{ Outcome, Details, Actor string }
		}
		op.must(http.StatusOK, "GET", "/v1/sites/"+s+"/logs/audit", nil, &audit)
		found := false
		for _, a := range audit.Events {
			found = found || a.Outcome == "admin.delete" && a.Details == "manager@example.com" && a.Actor == operatorEmail
		}
		if !found {
			t.Errorf("site %s's audit log has no admin.delete of the manager: %+v", s, audit.Events)
		}
	}
	// The address can be invited again, as a new account.
	owner.must(http.StatusCreated, "PUT", "/v1/sites/"+site+"/admins", map[string]string{"email": "manager@example.com", "role": "viewer"}, nil)
}
