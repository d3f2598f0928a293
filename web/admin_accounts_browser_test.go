package web_test

import (
	"context"
	"errors"
	"testing"

	"github.com/foyer-intercom/foyer/accounts"
)

// TestPortalAccounts: an operator's portal lists every admin account with
// its roles on the Accounts tab and deletes a manager's account there,
// after confirming; a manager's portal has no such tab.
func TestPortalAccounts(t *testing.T) {
	node := newPortal(t)
	ctx := context.Background()
	if _, err := node.acc.CreateAdmin(ctx, "operator@example.com", "portal password 1", true); err != nil {
		t.Fatal(err)
	}
	node.siteAdminElsewhere(t, "s_acc", "manager@example.com", "portal password 2")

	browser := chromium(t)
	c := &call{t: t}
	mgr := c.open(browser, "manager", node.srv.URL+"/admin")
	c.signInToPortal(mgr, "manager@example.com", "portal password 2")
	c.waitFor(mgr, "the manager signed in, with no Accounts tab", seen(`shown("app") && !shown("accounts-tab") && shown("site")`))

	p := c.open(browser, "operator", node.srv.URL+"/admin")
	c.signInToPortal(p, "operator@example.com", "portal password 1")
	c.waitFor(p, "the operator signed in, with the Accounts tab", seen(`shown("app") && shown("accounts-tab")`))
	c.click(p, `button[data-tab="accounts"]`)
	const row = `document.querySelector('#accounts tbody tr[data-email="manager@example.com"]')`
	c.waitFor(p, "the manager's account listed with its role", row+` !== null && `+row+`.children[1].textContent === "active" &&
		`+row+`.children[2].textContent === "Court s_acc: admin" &&
		document.querySelector('#accounts tbody tr[data-email="operator@example.com"]').children[2].textContent === "operator"`)
	if _, err := eval[bool](p, `(window.confirm = (m) => { window.asked = m; return true; }, true)`); err != nil {
		c.fail("admin page: %v", err)
	}
	c.click(p, `#accounts tbody tr[data-email="manager@example.com"] button`)
	c.waitFor(p, "the manager's account gone from the list", row+` === null && String(window.asked).includes("manager@example.com")`)
	if _, err := node.acc.AdminByEmail(ctx, "manager@example.com"); !errors.Is(err, accounts.ErrNotFound) {
		c.fail("the manager's account after its Delete: %v, want it gone", err)
	}
}
