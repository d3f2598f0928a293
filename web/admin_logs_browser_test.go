package web_test

import (
	"context"
	"testing"
	"time"

	"github.com/foyer-intercom/foyer/accounts"
	"github.com/foyer-intercom/foyer/directory"
)

// TestPortalCallLog: the Logs tab names what its entries hold as IDs (the
// door station, the monitor that answered, the person whose app answered,
// the people a call was for) by the names the site gives them; "about"
// a person lists the calls that were for them, answered by anyone (the
// person stays chosen while the users tab lists others); and the tab shows
// the calls logged since the page loaded when it is opened.
func TestPortalCallLog(t *testing.T) {
	node := newPortal(t)
	node.siteAdminElsewhere(t, "s_log", "manager@example.com", "portal password 1")
	ctx := context.Background()
	site := directory.SiteID("s_log")
	ops := []directory.Op{
		directory.PutEntry{Entry: directory.Entry{Site: site, Number: "5", Name: "Five"}},
		directory.PutEntry{Entry: directory.Entry{Site: site, Number: "6", Name: "Six"}},
		directory.PutDevice{Device: directory.Device{ID: "d_gate", Kind: directory.KindDoorStation, Name: "Front gate", Site: site}},
		directory.PutDevice{Device: directory.Device{ID: "d_hall", Kind: directory.KindMonitor, Name: "Hall monitor", Site: site, Number: "5"}},
	}
	for _, u := range []struct{ id, email, name, number string }{{"u_anna", "anna@example.com", "Anna", "5"}, {"u_bram", "bram@example.com", "Bram", "5"}, {"u_carla", "carla@example.com", "Carla", "6"}} {
		ops = append(ops, directory.PutUser{User: directory.User{ID: directory.UserID(u.id), Email: u.email}},
			directory.PutMembership{Membership: directory.Membership{Site: site, User: directory.UserID(u.id), Number: directory.Number(u.number), DisplayName: u.name, Status: directory.StatusActive, Licence: directory.LicenceActive}})
	}
	if err := node.store.Apply(ctx, ops...); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Add(-time.Hour)
	logged := func(min int, id, number, outcome string, people ...directory.UserID) accounts.Event {
		return accounts.Event{Site: site, Kind: accounts.EventCall, Time: t0.Add(time.Duration(min) * time.Minute), CallID: id, Door: "d_gate",
			Number: directory.Number(number), Outcome: outcome, People: people}
	}
	byMonitor := logged(1, "c_monitor", "5", "hangup", "u_anna", "u_bram")
	byMonitor.Answered = "d_hall"
	byAnna := logged(2, "c_anna", "5", "hangup", "u_anna", "u_bram")
	byAnna.Answered, byAnna.User = "d_annasphone", "u_anna"
	if err := node.acc.LogAll(ctx, []accounts.Event{byMonitor, byAnna, logged(3, "c_carla", "6", "no_answer", "u_carla")}); err != nil {
		t.Fatal(err)
	}

	browser := chromium(t)
	c := &call{t: t}
	p := c.open(browser, "admin", node.srv.URL+"/admin")
	c.signInToPortal(p, "manager@example.com", "portal password 1")
	c.waitFor(p, "signed in", seen(`shown("app") && document.getElementById("site").value === "s_log"`))
	c.click(p, `button[data-tab="logs"]`)
	const rows = `[...document.querySelectorAll("#logs tbody tr")].map(tr => [...tr.children].slice(1, 6).map(td => td.textContent).join("|")).join("\n")`
	c.waitFor(p, "the call log by names", rows+` === "no_answer||Carla|Front gate|\nhangup|Anna|Anna, Bram|Front gate|Anna\nhangup||Anna, Bram|Front gate|Hall monitor"`)

	if _, err := eval[bool](p, `(() => { const s = document.getElementById("l-user");
		s.value = [...s.options].find(o => o.textContent.startsWith("Carla ")).value;
		s.dispatchEvent(new Event("change")); return true; })()`); err != nil {
		c.fail("choosing Carla: %v", err)
	}
	c.waitFor(p, "Carla's calls alone", rows+` === "no_answer||Carla|Front gate|"`)

	// A call logged while the page is open shows when the tab is opened.
	if err := node.acc.Log(ctx, logged(4, "c_later", "6", "unavailable", "u_carla")); err != nil {
		t.Fatal(err)
	}
	// The users listed filtered meanwhile, Carla not among them: she stays chosen.
	c.click(p, `button[data-tab="users"]`)
	c.typeInto(p, "#u-filter", "anna")
	c.waitFor(p, "the users filtered", `document.querySelectorAll("#users tbody tr").length === 1`)
	c.click(p, `button[data-tab="logs"]`)
	c.waitFor(p, "the later call listed, Carla's alone", rows+` === "unavailable||Carla|Front gate|\nno_answer||Carla|Front gate|" &&
		document.getElementById("l-user").selectedOptions[0].textContent.startsWith("Carla ")`)
}
