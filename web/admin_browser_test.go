package web_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/foyer-intercom/foyer/accounts"
	"github.com/foyer-intercom/foyer/api"
	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/email"
	"github.com/foyer-intercom/foyer/internal/kv"
	"github.com/foyer-intercom/foyer/web"
)

// adminServer runs the portal and the API on the embedded store, with the
// mail going to an outbox. It returns the server and the directory.
func adminServer(t *testing.T) (*httptest.Server, directory.Store, *accounts.Store) {
	t.Helper()
	store, err := directory.OpenBolt(filepath.Join(t.TempDir(), "foyer.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	records, err := kv.NewBolt(store.DB())
	if err != nil {
		t.Fatal(err)
	}
	acc := accounts.New(records, nil)
	outbox, err := email.NewOutbox(filepath.Join(t.TempDir(), "outbox"), "foyer <noreply@foyer.test>")
	if err != nil {
		t.Fatal(err)
	}
	a, err := api.New(api.Config{Directory: store, Accounts: acc, Mail: outbox, Outbox: outbox, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", a)
	mux.Handle("/", web.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, store, acc
}

// TestPortalAddUser signs into the portal in headless Chromium, adds an app
// user with the form, and sees them in the list, with their invitation in
// the outbox.
func TestPortalAddUser(t *testing.T) {
	srv, store, acc := adminServer(t)
	ctx := context.Background()
	if _, err := acc.CreateAdmin(ctx, "manager@example.com", "portal password 1", true); err != nil {
		t.Fatal(err)
	}
	site := directory.Site{ID: "s_portal", Name: "Portal Court", Settings: directory.DefaultSettings()}
	if err := store.Apply(ctx, directory.PutSite{Site: site}); err != nil {
		t.Fatal(err)
	}

	browser := chromium(t)
	c := &call{t: t}
	p := c.open(browser, "admin", srv.URL+"/admin")
	c.waitFor(p, "the sign-in form", `!document.getElementById("login").hidden`)
	c.typeInto(p, "#login-email", "manager@example.com")
	c.typeInto(p, "#login-password", "wrong password")
	c.click(p, "#login button")
	c.waitFor(p, "a wrong password is refused", `document.getElementById("error").textContent.includes("wrong e-mail or password")`)
	c.clear(p, "#login-password")
	c.typeInto(p, "#login-password", "portal password 1")
	c.click(p, "#login button")
	c.waitFor(p, "signed in, the site selected", `!document.getElementById("app").hidden && document.getElementById("site").value === "s_portal"`)

	c.typeInto(p, "#u-email", "new.resident@example.com")
	c.typeInto(p, "#u-number", "204")
	c.typeInto(p, "#u-name", "Nieuw")
	c.click(p, "#add-user button.primary")
	c.waitFor(p, "the new user in the list", `[...document.querySelectorAll("#users tbody tr")].some(tr =>
		tr.dataset.email === "new.resident@example.com" && tr.children[1].textContent === "204" &&
		tr.children[4].textContent === "pending" && tr.children[5].textContent === "sent")`)

	// A refused add shows the API's message and adds nothing.
	c.typeInto(p, "#u-email", "new.resident@example.com")
	c.typeInto(p, "#u-number", "205")
	c.typeInto(p, "#u-name", "Again")
	c.click(p, "#add-user button.primary")
	c.waitFor(p, "the conflict shown", `document.getElementById("error").textContent.includes("already an app user")`)
	if n := c.number(p, `document.querySelectorAll("#users tbody tr").length`); n != 1 {
		c.fail("users listed after a refused add: %v, want 1", n)
	}

	c.click(p, "#outbox-tab")
	c.waitFor(p, "the invitation in the outbox", `[...document.querySelectorAll("#outbox tbody tr")].some(tr =>
		tr.children[1].textContent.includes("new.resident@example.com") && tr.children[2].textContent.includes("Portal Court"))`)

	u, err := store.UserByEmail(ctx, "new.resident@example.com")
	if err != nil {
		t.Fatalf("the user the portal added is not in the directory: %v", err)
	}
	if ms, _ := store.Memberships(ctx, u.ID); len(ms) != 1 || ms[0].Number != "204" {
		t.Fatalf("memberships %+v, want one on 204", ms)
	}

	// The site form saves what was changed in it only: a setting another
	// manager changed while the form was shown is kept.
	c.click(p, `button[data-tab="site"]`)
	c.waitFor(p, "the site form", `document.getElementById("s-name").value === "Portal Court" && document.getElementById("s-ring").value === "30"`)
	meanwhile := site
	meanwhile.Settings.RingTimeout = 45 * time.Second
	if err := store.Apply(ctx, directory.PutSite{Site: meanwhile}); err != nil {
		t.Fatal(err)
	}
	c.clear(p, "#s-name")
	c.typeInto(p, "#s-name", "Portal Court East")
	c.click(p, "#site-form button.primary")
	c.waitFor(p, "the form showing the site saved", `document.getElementById("s-name").value === "Portal Court East" && document.getElementById("s-ring").value === "45"`)
	if s, err := store.Site(ctx, site.ID); err != nil || s.Name != "Portal Court East" || s.Settings.RingTimeout != 45*time.Second {
		t.Fatalf("site %+v, %v; want the new name and the ring timeout set meanwhile", s, err)
	}
}

// typeInto types text into the field sel matches, key by key.
func (c *call) typeInto(p *page, sel, text string) {
	c.t.Helper()
	ctx, stop := context.WithTimeout(p.ctx, browserWait)
	defer stop()
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(sel), text)); err != nil {
		c.fail("%s page: typing into %s: %v", p.name, sel, err)
	}
}

// clear empties the field sel matches.
func (c *call) clear(p *page, sel string) {
	c.t.Helper()
	if _, err := eval[bool](p, `(document.querySelector(`+strconv.Quote(sel)+`).value = "") === ""`); err != nil {
		c.fail("%s page: clearing %s: %v", p.name, sel, err)
	}
}
