package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/foyer-intercom/foyer/accounts"
	"github.com/foyer-intercom/foyer/api"
	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/email"
	"github.com/foyer-intercom/foyer/internal/kv"
	"github.com/foyer-intercom/foyer/internal/mailtest"
	"github.com/foyer-intercom/foyer/signaling"
	"github.com/foyer-intercom/foyer/web"
)

// portal is a node serving the API and the pages on the embedded store,
// its mail going to an outbox.
type portal struct {
	srv    *httptest.Server
	store  directory.Store
	acc    *accounts.Store
	outbox *email.Outbox
}

// newPortal starts a portal whose e-mailed links (PUBLIC_URL) point at
// itself, so a test can open them.
func newPortal(t *testing.T) *portal {
	t.Helper()
	return newPortalOf(t, nil)
}

// newPortalOf is newPortal whose API says what the signalling hub (the
// one hub returns when asked) knows of calls in progress and connected
// devices; nil: nothing known.
func newPortalOf(t *testing.T, hub func() *signaling.Hub) *portal {
	t.Helper()
	var live func(context.Context, directory.SiteID) signaling.LiveCalls
	var connected func(context.Context, []directory.DeviceID) map[directory.DeviceID]bool
	if hub != nil {
		live = func(ctx context.Context, site directory.SiteID) signaling.LiveCalls {
			return hub().LiveCalls(ctx, site)
		}
		connected = func(ctx context.Context, ids []directory.DeviceID) map[directory.DeviceID]bool {
			return hub().Connected(ctx, ids)
		}
	}
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
	srv := httptest.NewUnstartedServer(nil) // listening already: its address goes into the links
	backups := t.TempDir()
	a, err := api.New(api.Config{Directory: store, Accounts: acc, Mail: outbox, Outbox: outbox,
		PublicURL: "http://" + srv.Listener.Addr().String(), Log: slog.New(slog.DiscardHandler), LiveCalls: live, Connected: connected,
		Backup: func() (*os.File, error) { return store.Backup(backups) }})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", a)
	mux.Handle("/", web.Handler())
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)
	return &portal{srv: srv, store: store, acc: acc, outbox: outbox}
}

// adminServer runs the portal and the API on the embedded store, with the
// mail going to an outbox. It returns the server and the directory.
func adminServer(t *testing.T) (*httptest.Server, directory.Store, *accounts.Store) {
	t.Helper()
	p := newPortal(t)
	return p.srv, p.store, p.acc
}

// TestPortalBackup: an operator signed into the portal downloads a backup
// from its Backup tab (a tab only operators see); the file Chromium saves
// opens as a store holding the site.
func TestPortalBackup(t *testing.T) {
	srv, store, acc := adminServer(t)
	ctx := context.Background()
	if _, err := acc.CreateAdmin(ctx, "operator@example.com", "portal password 1", true); err != nil {
		t.Fatal(err)
	}
	site := directory.Site{ID: "s_backup", Name: "Backup Court", Settings: directory.DefaultSettings()}
	if err := store.Apply(ctx, directory.PutSite{Site: site}); err != nil {
		t.Fatal(err)
	}

	browser := chromium(t)
	c := &call{t: t}
	p := c.open(browser, "admin", srv.URL+"/admin")
	downloads := t.TempDir()
	saved := make(chan string, 1)
	go func() {
		for e, err := range chromedp.Events(p.ctx, cdpbrowser.DownloadProgress) {
			if err != nil {
				return
			}
			if e.State == cdpbrowser.DownloadProgressStateCompleted {
				saved <- e.GUID
				return
			}
		}
	}()
	events := true
	if _, err := chromedp.Call(p.ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
		Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: downloads, EventsEnabled: &events,
		BrowserContextID: chromedp.FromContext(p.ctx).BrowserContextID,
	}); err != nil {
		t.Fatal(err)
	}
	c.signInToPortal(p, "operator@example.com", "portal password 1")
	c.waitFor(p, "signed in, the Backup tab shown", `!document.getElementById("app").hidden && !document.getElementById("backup-tab").hidden`)
	c.click(p, "#backup-tab")
	c.click(p, "#backup-download")
	c.waitFor(p, "the backup saved", `!document.getElementById("backup-done").hidden && /^Saved foyer-\d{8}T\d{6}Z\.db/.test(document.getElementById("backup-done").textContent)`)
	var guid string
	select {
	case guid = <-saved:
	case <-time.After(browserWait):
		c.fail("Chromium saved no download")
	}
	restored, err := directory.OpenBolt(filepath.Join(downloads, guid))
	if err != nil {
		t.Fatalf("the downloaded backup does not open as a store: %v", err)
	}
	defer restored.Close()
	if s, err := restored.Site(ctx, site.ID); err != nil || s.Name != site.Name {
		t.Fatalf("the site in the downloaded backup: %+v, %v", s, err)
	}
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

// TestPortalCallingDoors signs an admin of a site into the portal, lists
// the door stations of another site that call it on the site tab, and
// revokes one: cancelling the confirmation changes nothing; confirming
// takes the site out of that door's call sites only. A viewer of the site
// sees the list without a Revoke button.
func TestPortalCallingDoors(t *testing.T) {
	srv, store, acc := adminServer(t)
	ctx := context.Background()
	gate := directory.Site{ID: "s_gate", Name: "Gate House", Settings: directory.DefaultSettings()}
	north := directory.Site{ID: "s_north", Name: "North Block", Settings: directory.DefaultSettings()}
	shared := directory.Device{ID: "d_shared", Kind: directory.KindDoorStation, Name: "Shared gate", Site: gate.ID, CallSites: []directory.SiteID{north.ID}}
	back := directory.Device{ID: "d_back", Kind: directory.KindDoorStation, Name: "Back gate", Site: gate.ID, CallSites: []directory.SiteID{north.ID}}
	if err := store.Apply(ctx, directory.PutSite{Site: gate}, directory.PutSite{Site: north},
		directory.PutDevice{Device: shared}, directory.PutDevice{Device: back}); err != nil {
		t.Fatal(err)
	}
	for addr, role := range map[string]accounts.Role{"north-admin@example.com": accounts.RoleAdmin, "north-viewer@example.com": accounts.RoleViewer} {
		adm, err := acc.CreateAdmin(ctx, addr, "portal password 1", false)
		if err != nil {
			t.Fatal(err)
		}
		if err := acc.SetRole(ctx, north.ID, adm.ID, role); err != nil {
			t.Fatal(err)
		}
	}

	browser := chromium(t)
	c := &call{t: t}
	// signIn opens the portal as addr and shows north's site tab, listing rows.
	signIn := func(name, addr, rows string) *page {
		p := c.open(browser, name, srv.URL+"/admin")
		c.signInToPortal(p, addr, "portal password 1")
		c.waitFor(p, "signed in, north selected", `!document.getElementById("app").hidden && document.getElementById("site").value === "s_north"`)
		c.click(p, `button[data-tab="site"]`)
		c.waitFor(p, "the calling doors listed", `[...document.querySelectorAll("#callers tbody tr")].map(tr =>
			tr.dataset.id + " " + tr.children[0].textContent + " " + tr.children[1].textContent).join() === `+strconv.Quote(rows)+
			` && document.getElementById("callers-none").hidden`)
		return p
	}

	p := signIn("admin", "north-admin@example.com", "d_back Back gate Gate House,d_shared Shared gate Gate House")
	revoke := `#callers tbody tr[data-id="d_shared"] button`
	if _, err := eval[bool](p, `(window.confirm = (m) => { window.asked = m; return false; }, true)`); err != nil {
		t.Fatal(err)
	}
	c.click(p, revoke)
	c.waitFor(p, "the confirmation asked", `String(window.asked).includes("Shared gate") && String(window.asked).includes("Gate House")`)
	if d, err := store.Device(ctx, shared.ID); err != nil || len(d.CallSites) != 1 {
		t.Fatalf("after a cancelled revocation the door is %+v, %v; want it still calling north", d, err)
	}
	if _, err := eval[bool](p, `(window.confirm = () => true, true)`); err != nil {
		t.Fatal(err)
	}
	c.click(p, revoke)
	c.waitFor(p, "the revoked door gone from the list", `[...document.querySelectorAll("#callers tbody tr")].map(tr => tr.dataset.id).join() === "d_back"`)
	d, err := store.Device(ctx, shared.ID)
	if err != nil || len(d.CallSites) != 0 || d.Site != gate.ID || d.Name != shared.Name {
		t.Fatalf("after the revocation the door is %+v, %v; want it in its own site, calling nothing else", d, err)
	}

	v := signIn("viewer", "north-viewer@example.com", "d_back Back gate Gate House")
	if n := c.number(v, `document.querySelectorAll("#callers tbody button").length`); n != 0 {
		c.fail("a viewer is offered %v Revoke buttons, want none", n)
	}

	// Revoked meanwhile (by another admin, or the gate's installer): the
	// admin's click says so and the list drops the door rather than
	// keeping a row whose button can only fail again.
	was := back
	back.CallSites = nil
	if err := store.Apply(ctx, directory.PutDevice{Device: back, Was: &was}); err != nil {
		t.Fatal(err)
	}
	c.click(p, `#callers tbody tr[data-id="d_back"] button`)
	c.waitFor(p, "the error shown and the list refreshed", `!document.getElementById("error").hidden &&
		document.getElementById("error").textContent.includes("calls this site") &&
		document.querySelectorAll("#callers tbody tr").length === 0 && !document.getElementById("callers-none").hidden`)
}

// TestPortalInviteAdmin: a site's owner (not an operator) grants the
// installer role to an address with no account on the portal's Admins
// tab; the invitation lands in the outbox; the invitee signs in with its
// temporary password in another browser, is shown nothing but the form to
// choose a password (and is held to typing it twice alike), then sees the
// site, without the owner's Grant form.
func TestPortalInviteAdmin(t *testing.T) {
	node := newPortal(t)
	srv, store, acc, outbox := node.srv, node.store, node.acc, node.outbox
	ctx := context.Background()
	site := directory.Site{ID: "s_grant", Name: "Grant Court", Settings: directory.DefaultSettings()}
	if err := store.Apply(ctx, directory.PutSite{Site: site}); err != nil {
		t.Fatal(err)
	}
	owner, err := acc.CreateAdmin(ctx, "owner@example.com", "portal password 1", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := acc.SetRole(ctx, site.ID, owner.ID, accounts.RoleOwner); err != nil {
		t.Fatal(err)
	}

	browser := chromium(t)
	c := &call{t: t}
	p := c.open(browser, "owner", srv.URL+"/admin")
	c.signInToPortal(p, "owner@example.com", "portal password 1")
	c.waitFor(p, "signed in, the site selected", `!document.getElementById("app").hidden && document.getElementById("site").value === "s_grant"`)
	c.click(p, `button[data-tab="admins"]`)
	c.waitFor(p, "the Admins tab with the Grant form and the owner listed", seen(`shown("tab-admins") && shown("grant") && !shown("login") &&
		[...document.querySelectorAll("#admins tbody tr")].map(tr => tr.dataset.email + " " + tr.children[1].textContent).join() === "owner@example.com owner"`))
	c.typeInto(p, "#a-email", "Ivo.Installer@example.com")
	if _, err := eval[bool](p, `(document.getElementById("a-role").value = "installer") === "installer"`); err != nil {
		t.Fatal(err)
	}
	c.click(p, "#grant button.primary")
	c.waitFor(p, "the invitee listed as an invited installer, and the invitation noted", `[...document.querySelectorAll("#admins tbody tr")].some(tr =>
		tr.dataset.email === "ivo.installer@example.com" && tr.children[1].textContent === "installer" && tr.children[2].textContent === "invited") &&
		!document.getElementById("a-note").hidden && document.getElementById("a-note").textContent.includes("ivo.installer@example.com")`)
	c.screenshot(p, "admin-invited")

	invitee, err := acc.AdminByEmail(ctx, "ivo.installer@example.com")
	if err != nil || invitee.Operator || !invitee.TemporaryPassword {
		t.Fatalf("the invited account: %+v, %v; want a non-operator on a temporary password", invitee, err)
	}
	temp := invitationPassword(t, outbox, "ivo.installer@example.com")

	q := c.open(browser, "invitee", srv.URL+"/admin")
	c.signInToPortal(q, "ivo.installer@example.com", temp)
	c.waitFor(q, "only the form to choose a password", seen(`shown("password") && !shown("app") && !shown("login") && !shown("site")`))
	c.screenshot(q, "admin-choose-password")
	reload, stop := context.WithTimeout(q.ctx, browserWait)
	if err := chromedp.Do(reload, chromedp.Reload()); err != nil {
		c.fail("invitee page: reload: %v", err)
	}
	stop()
	c.waitFor(q, "only the form to choose a password after a reload", seen(`shown("password") && !shown("app") && !shown("login") && !shown("site")`))
	c.typeInto(q, "#pw-new", "ivo's own password")
	c.typeInto(q, "#pw-repeat", "ivo's own passwort")
	c.click(q, "#password button.primary")
	c.waitFor(q, "two different passwords refused", `document.getElementById("error").textContent.includes("differ") && !document.getElementById("password").hidden`)
	c.clear(q, "#pw-repeat")
	c.typeInto(q, "#pw-repeat", "ivo's own password")
	c.click(q, "#password button.primary")
	c.waitFor(q, "signed in, the site shown", seen(`shown("app") && !shown("password") && !shown("login") &&
		shown("site") && document.getElementById("site").value === "s_grant" && document.getElementById("s-name").value === "Grant Court" &&
		document.getElementById("who").textContent === "ivo.installer@example.com"`))
	c.click(q, `button[data-tab="admins"]`)
	c.waitFor(q, "the Admins tab without the Grant form", seen(`shown("tab-admins") && !shown("grant") &&
		[...document.querySelectorAll("#admins tbody tr")].some(tr => tr.dataset.email === "ivo.installer@example.com" && tr.children[2].textContent === "active") &&
		document.querySelectorAll("#admins tbody button").length === 0`))

	if _, err := acc.LoginAdmin(ctx, "ivo.installer@example.com", "ivo's own password"); err != nil {
		t.Fatalf("the password chosen in the portal: %v", err)
	}
	if roles, err := acc.RolesOf(ctx, invitee.ID); err != nil || roles[site.ID] != accounts.RoleInstaller {
		t.Fatalf("the invitee's roles: %v, %v; want installer on %s", roles, err, site.ID)
	}
}

// seen is a page condition in which shown(id) says whether the element is
// laid out at all (not display: none, nor inside such an element): shown
// to a person, whatever its hidden attribute says.
func seen(cond string) string {
	return `(() => { const shown = (id) => document.getElementById(id).getClientRects().length > 0; return ` + cond + `; })()`
}

// invitationPassword reads the temporary password of the outbox's
// invitation to addr.
func invitationPassword(t *testing.T, outbox *email.Outbox, addr string) string {
	t.Helper()
	items, err := outbox.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if !strings.Contains(it.To, addr) {
			continue
		}
		raw, err := outbox.Read(it.Name)
		if err != nil {
			t.Fatal(err)
		}
		text, err := mailtest.Body(raw)
		if err != nil {
			t.Fatal(err)
		}
		if m := regexp.MustCompile(`Temporary password:\s+(\S+)`).FindStringSubmatch(text); m != nil {
			return string(m[1])
		}
		t.Fatalf("no temporary password in the invitation to %s:\n%s", addr, text)
	}
	t.Fatalf("no e-mail to %s in the outbox (%d messages)", addr, len(items))
	return ""
}

// TestPortalChangePassword: an admin who chose their password changes it
// with Change password in the portal's header. The form sends nothing for
// two different new passwords or one outside the length rule; a wrong
// current password is said so and keeps the admin signed in; the right one
// changes it, says the other sessions were signed out, and empties the
// fields. Afterwards the new password signs in and the old one does not; a
// session opened before the change has ended, the portal's own goes on.
// Guessing the current password then locks the account, and the form says
// when to try again.
func TestPortalChangePassword(t *testing.T) {
	node := newPortal(t)
	const addr, oldPassword, newPassword = "manager@example.com", "portal password 1", "a new portal password"
	// A session opened elsewhere (a script, another browser) before the change.
	other := node.siteAdminElsewhere(t, "s_change", addr, oldPassword)

	browser := chromium(t)
	c := &call{t: t}
	p := c.open(browser, "admin", node.srv.URL+"/admin")
	c.signInToPortal(p, addr, oldPassword)
	c.waitFor(p, "signed in, Change password in the header", seen(`shown("app") && shown("change-password") && shown("logout") &&
		!shown("password") && document.getElementById("site").value === "s_change"`))

	c.click(p, "#change-password")
	c.waitFor(p, "the form above the app, asking for the current password", seen(`shown("password") && shown("pw-current") && shown("app") &&
		!shown("pw-forced") && document.getElementById("pw-title").textContent === "Change password" &&
		document.activeElement.id === "pw-current"`))
	c.screenshot(p, "admin-change-password")

	// fill types the current password and the new one twice into the emptied form.
	fill := func(current, first, again string) {
		for _, f := range []struct{ sel, text string }{{"#pw-current", current}, {"#pw-new", first}, {"#pw-repeat", again}} {
			c.clear(p, f.sel)
			c.typeInto(p, f.sel, f.text)
		}
	}
	c.countRequests(p)
	refused := []struct{ what, first, again, says string }{
		{"two different new passwords", newPassword, newPassword + "!", "differ"},
		{"a short new password", "short", "short", "at least 10 characters"},
		{"a new password over 256 bytes", strings.Repeat("é", 129), strings.Repeat("é", 129), "at most 256 bytes"},
		{"a new password of 257 bytes", strings.Repeat("é", 128) + "!", strings.Repeat("é", 128) + "!", "at most 256 bytes"},
		// Nine characters, eighteen JavaScript (UTF-16) string units: the
		// server counts characters.
		{"nine characters outside the BMP", strings.Repeat("😀", 9), strings.Repeat("😀", 9), "at least 10 characters"},
	}
	for _, r := range refused {
		fill(oldPassword, r.first, r.again)
		c.click(p, "#password button.primary")
		c.waitFor(p, r.what+" refused on the page", seen(`shown("error") && document.getElementById("error").textContent.includes(`+jsString(r.says)+`) &&
			shown("password") && shown("app") && !shown("pw-done")`))
	}
	if n := c.number(p, `window.sent`); n != 0 {
		c.fail("the page sent %v requests for new passwords it refuses, want none", n)
	}

	// emptied is true once the answer to a change came: the fields are
	// emptied whatever it was.
	const emptied = `["pw-current", "pw-new", "pw-repeat"].every(id => document.getElementById(id).value === "")`
	fill("not my password", newPassword, newPassword)
	c.click(p, "#password button.primary")
	c.waitFor(p, "a wrong current password said so, still signed in", seen(emptied+` && shown("error") &&
		document.getElementById("error").textContent.includes("current password is wrong") &&
		shown("password") && shown("app") && !shown("login") && !shown("pw-done")`))
	if n := c.number(p, `window.sent`); n != 1 {
		c.fail("requests sent for a wrong current password: %v, want 1", n)
	}
	c.screenshot(p, "admin-change-password-wrong")

	fill(oldPassword, newPassword, newPassword)
	c.click(p, "#password button.primary")
	c.waitFor(p, "the change said done", seen(emptied+` && !shown("error") && shown("pw-done") &&
		document.getElementById("pw-done").textContent === "Password changed; your other sessions were signed out." &&
		shown("password") && shown("app") && !shown("login")`))
	c.screenshot(p, "admin-change-password-done")

	if st, _ := node.adminLogin(t, addr, newPassword); st != http.StatusOK {
		t.Fatalf("login with the new password: %d, want 200", st)
	}
	if st, _ := node.adminLogin(t, addr, oldPassword); st != http.StatusUnauthorized {
		t.Fatalf("login with the old password after the change: %d, want 401", st)
	}
	if st := node.adminMe(t, other); st != http.StatusUnauthorized {
		t.Fatalf("GET /v1/admin/me in the session opened before the change: %d, want 401 (ended)", st)
	}
	if st := c.number(p, `fetch("/v1/admin/me").then(r => r.status)`); st != http.StatusOK {
		c.fail("the portal's own session after the change: GET /v1/admin/me %v, want 200", st)
	}
	c.click(p, "#pw-close")
	c.waitFor(p, "the form closed, the app still there", seen(`!shown("password") && shown("app") && shown("change-password")`))

	// Guesses at the current password count as failed sign-ins: after a
	// few, the account is locked and the form says for how long.
	c.click(p, "#change-password")
	for i := 0; ; i++ {
		fill(fmt.Sprintf("guess %d", i), "yet another password", "yet another password")
		c.click(p, "#password button.primary")
		c.waitFor(p, "the answer to a guess", seen(emptied+` && shown("error")`))
		said, err := eval[string](p, `document.getElementById("error").textContent`)
		if err != nil {
			c.fail("admin page: %v", err)
		}
		if strings.Contains(said, "locked") {
			if !regexp.MustCompile(`Try again in [1-9][0-9]* s\.`).MatchString(said) {
				c.fail("the lock said %q, want when to try again (Retry-After)", said)
			}
			break
		}
		if !strings.Contains(said, "current password is wrong") || i == 6 {
			c.fail("guess %d said %q; want the wrong password, then the lock after 5 failures", i, said)
		}
	}
	c.waitFor(p, "still signed in while locked", seen(`shown("app") && shown("password") && !shown("login")`))
	c.screenshot(p, "admin-change-password-locked")
	if st, _ := node.adminLogin(t, addr, newPassword); st != http.StatusTooManyRequests {
		t.Fatalf("login with the new password while locked: %d, want 429", st)
	}
}

// siteAdminElsewhere makes a site (siteID) with an admin of it, addr with
// password, and returns the token of a session of theirs opened through
// the API (as a script or another browser would), checked to work.
func (p *portal) siteAdminElsewhere(t *testing.T, siteID, addr, password string) string {
	t.Helper()
	ctx := context.Background()
	site := directory.Site{ID: directory.SiteID(siteID), Name: "Court " + siteID, Settings: directory.DefaultSettings()}
	if err := p.store.Apply(ctx, directory.PutSite{Site: site}); err != nil {
		t.Fatal(err)
	}
	adm, err := p.acc.CreateAdmin(ctx, addr, password, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.acc.SetRole(ctx, site.ID, adm.ID, accounts.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	st, tok := p.adminLogin(t, addr, password)
	if st != http.StatusOK || p.adminMe(t, tok) != http.StatusOK {
		t.Fatalf("a session of %s: login %d; want 200 and a working session", addr, st)
	}
	return tok
}

// adminLogin signs addr in through the API and returns the status and the
// session's bearer token.
func (p *portal) adminLogin(t *testing.T, addr, password string) (int, string) {
	t.Helper()
	b, err := json.Marshal(map[string]string{"email": addr, "password": password})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(p.srv.URL+"/v1/admin/login", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s struct {
		Token string `json:"token"`
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, s.Token
}

// adminMe asks GET /v1/admin/me with a session's bearer token and returns
// the status.
func (p *portal) adminMe(t *testing.T, token string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, p.srv.URL+"/v1/admin/me", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// signInToPortal fills the admin portal's sign-in form on p, once it
// shows, with addr and password, and sends it.
func (c *call) signInToPortal(p *page, addr, password string) {
	c.t.Helper()
	c.waitFor(p, "the sign-in form", `!document.getElementById("login").hidden`)
	c.typeInto(p, "#login-email", addr)
	c.typeInto(p, "#login-password", password)
	c.click(p, "#login button")
}

// TestPortalShowsNamesAsText: names an admin types, or a CSV import or a
// resident brings, are inserted into the portal as text: an app user's
// display name in the users list, a device's name in the devices list and
// in its provisioning code's notice, a site's name in the site list. Each
// shows as typed and makes no element.
func TestPortalShowsNamesAsText(t *testing.T) {
	node := newPortal(t)
	node.siteAdminElsewhere(t, "s_markup", "manager@example.com", "portal password 1")
	site := directory.Site{ID: "s_markup", Name: "<img src=x id=site-markup>", Settings: directory.DefaultSettings()}
	if err := node.store.Apply(context.Background(), directory.PutSite{Site: site}); err != nil {
		t.Fatal(err)
	}

	browser := chromium(t)
	c := &call{t: t}
	p := c.open(browser, "admin", node.srv.URL+"/admin")
	c.signInToPortal(p, "manager@example.com", "portal password 1")
	const noMarkup = ` && !document.querySelector("#site-markup, #user-markup, #door-markup, main img, main b")`
	c.waitFor(p, "signed in, the site's name as text", `!document.getElementById("app").hidden &&
		document.getElementById("site").selectedOptions[0].textContent === "<img src=x id=site-markup>"`+noMarkup)

	c.typeInto(p, "#u-email", "marked.up@example.com")
	c.typeInto(p, "#u-number", "204")
	c.typeInto(p, "#u-name", "<b id=user-markup>Marked</b>")
	c.click(p, "#add-user button.primary")
	c.waitFor(p, "the display name listed as text", `[...document.querySelectorAll("#users tbody tr")].some(tr =>
		tr.dataset.email === "marked.up@example.com" && tr.children[2].textContent === "<b id=user-markup>Marked</b>")`+noMarkup)

	c.click(p, `button[data-tab="devices"]`)
	c.typeInto(p, "#d-name", "<img src=x id=door-markup>")
	c.click(p, "#add-device button.primary")
	c.waitFor(p, "the device's name as text in its code's notice and the list", `!document.getElementById("d-code").hidden &&
		document.getElementById("d-code").textContent.startsWith("Provisioning code for <img src=x id=door-markup>: ") &&
		[...document.querySelectorAll("#devices tbody tr")].some(tr => tr.children[1].textContent === "<img src=x id=door-markup>")`+noMarkup)
}

// TestPortalSignOut: Sign out ends the session on the server, not only on
// the page: the portal's cookie opens nothing afterwards, and the portal
// opened again asks to sign in. A session ended elsewhere (signed out in
// another tab) shows the sign-in form at the portal's next request, rather
// than an error on a page that can do nothing more.
func TestPortalSignOut(t *testing.T) {
	node := newPortal(t)
	const addr, password = "manager@example.com", "portal password 1"
	node.siteAdminElsewhere(t, "s_out", addr, password)

	browser := chromium(t)
	c := &call{t: t}
	p := c.open(browser, "admin", node.srv.URL+"/admin")
	c.signInToPortal(p, addr, password)
	c.waitFor(p, "signed in", seen(`shown("app") && shown("logout") && document.getElementById("site").value === "s_out"`))
	c.click(p, "#logout")
	c.waitFor(p, "the sign-in form", seen(`shown("login") && !shown("app") && !shown("logout") && document.getElementById("who").textContent === ""`))
	if st := c.number(p, `fetch("/v1/admin/me").then(r => r.status)`); st != http.StatusUnauthorized {
		c.fail("GET /v1/admin/me after Sign out: %v, want 401 (the session ended)", st)
	}
	reload, stop := context.WithTimeout(p.ctx, browserWait)
	if err := chromedp.Do(reload, chromedp.Reload()); err != nil {
		c.fail("admin page: reload: %v", err)
	}
	stop()
	c.waitFor(p, "the sign-in form after a reload", seen(`shown("login") && !shown("app")`))

	// The page's own requests after signing in end before the session is
	// ended elsewhere: else one of them, not the typing, would meet it.
	if _, err := eval[bool](p, `(window.inflight = 0, window.fetch = ((f) => (...a) => (window.inflight++, f(...a).finally(() => window.inflight--)))(window.fetch), true)`); err != nil {
		c.fail("admin page: counting requests in flight: %v", err)
	}
	c.signInToPortal(p, addr, password)
	c.waitFor(p, "signed in again, the site's lists loaded", seen(`shown("app") && document.getElementById("site").value === "s_out" && window.inflight === 0`))
	const elsewhere = `fetch("/v1/admin/logout", {method: "POST", headers: {"X-CSRF-Token": window.foyerAdmin.csrf}}).then(r => r.status)`
	if st := c.number(p, elsewhere); st != http.StatusNoContent {
		c.fail("signing out in another tab: %v, want 204", st)
	}
	c.typeInto(p, "#u-filter", "a")
	c.waitFor(p, "the sign-in form at the next request", seen(`shown("login") && !shown("app")`))
}

// TestPortalImportUsers: a CSV file chosen with Import CSV is sent as
// such; a file with bad rows imports nothing and the error names each row
// at fault with its reason, not only the first; a good file imports its
// users, says how many, and lists them.
func TestPortalImportUsers(t *testing.T) {
	node := newPortal(t)
	node.siteAdminElsewhere(t, "s_import", "manager@example.com", "portal password 1")
	browser := chromium(t)
	c := &call{t: t}
	p := c.open(browser, "admin", node.srv.URL+"/admin")
	c.signInToPortal(p, "manager@example.com", "portal password 1")
	c.waitFor(p, "signed in", seen(`shown("app") && document.getElementById("site").value === "s_import"`))
	// choose hands the file input a file, as choosing one in the dialog does.
	choose := func(csv string) {
		js := `(() => { const dt = new DataTransfer(); dt.items.add(new File([` + jsString(csv) + `], "users.csv", {type: "text/csv"}));
			const input = document.getElementById("u-import"); input.files = dt.files; input.dispatchEvent(new Event("change")); return true; })()`
		if _, err := eval[bool](p, js); err != nil {
			c.fail("admin page: choosing a file: %v", err)
		}
	}
	choose("email,call_id,display_name\nok@example.com,301,Fine\nnot an address,302,Bad\nalso bad,303,Worse\n")
	c.waitFor(p, "each bad row named", `document.getElementById("error").textContent.includes("row 3:") &&
		document.getElementById("error").textContent.includes("row 4:") && document.getElementById("error").textContent.includes("also bad")`)
	if n := c.number(p, `document.querySelectorAll("#users tbody tr").length`); n != 0 {
		c.fail("users listed after a refused import: %v, want none", n)
	}
	choose("email,call_id,display_name\nfirst@example.com,301,First\nsecond@example.com,302,Second\n")
	c.waitFor(p, "the import said and listed", `document.getElementById("error").textContent === "Imported 2 users." &&
		[...document.querySelectorAll("#users tbody tr")].map(tr => tr.dataset.email).sort().join() === "first@example.com,second@example.com"`)
}

// TestPortalDevicesAndCodes: on the Devices tab, a monitor is added with
// its call ID and a door station without one, each with its provisioning
// code shown; an access code is made for an app user and the door station
// chosen; Delete and Revoke do nothing unless confirmed.
func TestPortalDevicesAndCodes(t *testing.T) {
	node := newPortal(t)
	node.siteAdminElsewhere(t, "s_dev", "manager@example.com", "portal password 1")
	ctx := context.Background()
	browser := chromium(t)
	c := &call{t: t}
	p := c.open(browser, "admin", node.srv.URL+"/admin")
	c.signInToPortal(p, "manager@example.com", "portal password 1")
	c.waitFor(p, "signed in", seen(`shown("app") && document.getElementById("site").value === "s_dev"`))
	c.typeInto(p, "#u-email", "resident@example.com")
	c.typeInto(p, "#u-number", "101")
	c.typeInto(p, "#u-name", "Resident")
	c.click(p, "#add-user button.primary")
	c.waitFor(p, "the user listed", `[...document.querySelectorAll("#users tbody tr")].some(tr => tr.dataset.email === "resident@example.com")`)

	c.click(p, `button[data-tab="devices"]`)
	if _, err := eval[bool](p, `(document.getElementById("d-kind").value = "monitor") === "monitor"`); err != nil {
		c.fail("admin page: %v", err)
	}
	c.typeInto(p, "#d-name", "Hall monitor")
	c.typeInto(p, "#d-number", "101")
	c.click(p, "#add-device button.primary")
	const code = `/^Provisioning code for %s: \S+ \(type it into the device; valid until .+\)$/.test(document.getElementById("d-code").textContent)`
	c.waitFor(p, "the monitor listed with its call ID, its code shown", fmt.Sprintf(code, "Hall monitor")+` &&
		[...document.querySelectorAll("#devices tbody tr")].some(tr => tr.children[0].textContent === "Monitor" &&
			tr.children[1].textContent === "Hall monitor" && tr.children[2].textContent === "101")`)
	c.typeInto(p, "#d-name", "Front gate")
	c.click(p, "#add-device button.primary")
	c.waitFor(p, "the door station listed, its code shown", fmt.Sprintf(code, "Front gate")+` &&
		[...document.querySelectorAll("#devices tbody tr")].some(tr => tr.children[0].textContent === "Door station" && tr.children[1].textContent === "Front gate")`)

	c.click(p, `button[data-tab="codes"]`)
	js := `(() => { const doors = document.getElementById("c-doors");
		for (const o of doors.options) o.selected = o.textContent === "Front gate";
		return doors.selectedOptions.length === 1; })()`
	if ok, err := eval[bool](p, js); err != nil || !ok {
		c.fail("admin page: choosing the door for the code: %v, %v", ok, err)
	}
	c.typeInto(p, "#c-pin", "4821")
	c.click(p, "#add-code button.primary")
	c.waitFor(p, "the code listed for the user and the door", `[...document.querySelectorAll("#codes tbody tr")].some(tr =>
		tr.children[0].textContent === "resident@example.com" && tr.children[1].textContent === "4821" && tr.children[2].textContent === "Front gate")`)

	if _, err := eval[bool](p, `(window.confirm = (m) => { window.asked = m; return false; }, true)`); err != nil {
		c.fail("admin page: %v", err)
	}
	c.click(p, `button[data-tab="users"]`)
	c.click(p, `#users tbody tr[data-email="resident@example.com"] td:last-child button:last-child`)
	c.waitFor(p, "Delete asked to confirm", `String(window.asked).includes("resident@example.com")`)
	c.click(p, `button[data-tab="devices"]`)
	if _, err := eval[bool](p, `(window.asked = "", true)`); err != nil {
		c.fail("admin page: %v", err)
	}
	c.click(p, `#devices tbody tr:first-child td:last-child button:last-child`)
	c.waitFor(p, "Revoke asked to confirm", `String(window.asked).startsWith("Revoke ")`)
	if _, err := node.store.UserByEmail(ctx, "resident@example.com"); err != nil {
		c.fail("the user after a Delete not confirmed: %v", err)
	}
	if n := c.number(p, `fetch("/v1/sites/s_dev/devices").then(r => r.json()).then(j => j.devices.length)`); n != 2 {
		c.fail("devices after a Revoke not confirmed: %v, want 2", n)
	}
}

// TestPortalSiteSettings: the site form sends the settings changed in it
// under the API's names: a door-open duration outside the allowed range
// is refused with the server's error naming the setting and its range,
// and changes nothing; a valid one, the preview and visitor passes switched
// off are saved.
func TestPortalSiteSettings(t *testing.T) {
	node := newPortal(t)
	node.siteAdminElsewhere(t, "s_set", "manager@example.com", "portal password 1")
	ctx := context.Background()
	browser := chromium(t)
	c := &call{t: t}
	p := c.open(browser, "admin", node.srv.URL+"/admin")
	c.signInToPortal(p, "manager@example.com", "portal password 1")
	c.waitFor(p, "signed in", seen(`shown("app") && document.getElementById("site").value === "s_set"`))
	c.click(p, `button[data-tab="site"]`)
	c.waitFor(p, "the site form showing the settings", `document.getElementById("s-door").value === "5" && document.getElementById("s-preview").checked &&
		document.getElementById("s-passes").checked && !document.getElementById("s-remote").checked`)

	c.clear(p, "#s-door")
	c.typeInto(p, "#s-door", "61")
	c.click(p, "#site-form button.primary")
	c.waitFor(p, "the server's error naming the setting", seen(`shown("error") &&
		document.getElementById("error").textContent.includes("door_open_duration_s must be 1 to 60")`))
	if s, err := node.store.Site(ctx, "s_set"); err != nil || s.Settings != directory.DefaultSettings() {
		t.Fatalf("after a refused save the site's settings are %+v, %v; want the defaults", s.Settings, err)
	}

	c.clear(p, "#s-door")
	c.typeInto(p, "#s-door", "7")
	c.click(p, "#s-preview")
	c.click(p, "#s-passes")
	c.click(p, "#s-remote")
	c.click(p, "#site-form button.primary")
	c.waitFor(p, "the settings saved", `fetch("/v1/sites/s_set").then(r => r.json()).then(s =>
		s.settings.door_open_duration_s === 7 && s.settings.preview === false && s.settings.visitor_passes === false && s.settings.remote_open === true)`)
	c.waitFor(p, "the form showing them, no error", seen(`!shown("error") && document.getElementById("s-door").value === "7" &&
		!document.getElementById("s-preview").checked && !document.getElementById("s-passes").checked && document.getElementById("s-remote").checked`))
	s, err := node.store.Site(ctx, "s_set")
	if err != nil || s.Settings.DoorOpenDuration != 7*time.Second || s.Settings.Preview || s.Settings.VisitorPasses || !s.Settings.RemoteOpen {
		t.Fatalf("the site's settings after the save: %+v, %v; want the door open 7 s, no preview, no visitor passes, opening from the app", s.Settings, err)
	}
}
