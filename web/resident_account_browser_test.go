package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/foyer-intercom/foyer/accounts"
	"github.com/foyer-intercom/foyer/directory"
)

const twoHomes = `sites:
  - name: Harbour View
    remote_open: true
    door_stations: [front-door]
    ids:
      - id: "101"
        name: Jansen
        app_users:
          - email: anna@example.com
            devices: [anna-phone]
          - email: bram@example.com
            devices: [bram-phone]
  - name: Quay House
    visitor_passes: false
    door_stations: [quay-door]
    ids:
      - id: "7"
        name: Jansen
        app_users:
          - email: anna@example.com
`

// TestResidentAccount: a resident signs in to the resident page with the
// temporary password of their invitation, chooses their own, and the page
// registers the browser as one of their app devices and connects it: a
// call to their home rings it. The page lists the calls that were for them
// as each ended for them (a housemate's answer is not a missed call), read
// again as each call ends; opens the door (the site allows it); makes a visitor pass whose PIN opens the door
// at the keypad once, and deletes another; when the session ends elsewhere
// it asks her to sign in again and connects anew; and signing out ends the
// session.
func TestResidentAccount(t *testing.T) {
	n := startNode(t, nodeOptions{provision: twoHomes, accounts: true})
	ctx := context.Background()
	anna, err := n.store.UserByEmail(ctx, "anna@example.com")
	if err != nil {
		t.Fatal(err)
	}
	temp, err := n.acc.SetTempPassword(ctx, anna.ID)
	if err != nil {
		t.Fatal(err)
	}
	signal := "ws" + strings.TrimPrefix(n.srv.URL, "http") + "/v1/signal"
	door := deviceOn(t, signal, n.tokens["front-door"])
	phone := deviceOn(t, signal, n.tokens["anna-phone"])
	bram := deviceOn(t, signal, n.tokens["bram-phone"])

	browser := chromium(t)
	c := &call{t: t}
	p := c.open(browser, "resident", n.srv.URL+"/resident")
	c.waitFor(p, "the sign-in form", `!document.getElementById("account").hidden && !document.getElementById("login").hidden`)
	c.typeInto(p, "#a-email", "anna@example.com")
	c.typeInto(p, "#a-password", temp)
	c.clear(p, "#a-device")
	c.typeInto(p, "#a-device", "Anna's laptop")
	c.click(p, "#account button")
	c.waitFor(p, "asked for a password of her own", `!document.getElementById("newpw").hidden && document.getElementById("account").hidden`)
	c.typeInto(p, "#n-password", "too short")
	c.typeInto(p, "#n-again", "too short")
	c.click(p, "#newpw button")
	c.waitFor(p, "a short password refused before sending", `document.getElementById("a-error").textContent.includes("too short")`)
	c.clear(p, "#n-password")
	c.clear(p, "#n-again")
	c.typeInto(p, "#n-password", "harbour view 101")
	c.typeInto(p, "#n-again", "harbour view 101")
	c.click(p, "#newpw button")
	const online = ` && document.getElementById("conn").textContent === "online"`
	c.waitFor(p, "connected as her new device, no calls yet", state("idle")+online+
		` && document.getElementById("who").textContent === "Signed in as anna@example.com"`+
		` && !document.getElementById("history").hidden && !document.getElementById("h-empty").hidden && !document.getElementById("passes").hidden`)
	if _, err := n.acc.LoginApp(ctx, "anna@example.com", anna.ID, "harbour view 101"); err != nil {
		t.Fatalf("the password chosen on the page: %v", err)
	}
	devs, err := n.store.UserDevices(ctx, anna.ID)
	if err != nil || len(devs) != 2 {
		t.Fatalf("Anna's devices: %v, %v; want her phone and the browser", devs, err)
	}

	const rows = `[...document.querySelectorAll("#h-list li strong")].map(e => e.textContent).join("|")`
	// 1: Bram answers; 2: her phone answers; 3: nobody does, the visitor leaves.
	for i, answerer := range []*websocket.Conn{bram, phone, nil} {
		send(t, door, map[string]any{"type": "call", "to": "101"})
		id := expectOn(t, door, "calling")["call_id"]
		for _, ws := range []*websocket.Conn{phone, bram} {
			expectOn(t, ws, "ring")
		}
		c.waitFor(p, "rings", state("ringing"))
		if answerer != nil {
			send(t, answerer, map[string]any{"type": "answer", "call_id": id})
			expectOn(t, answerer, "answered")
			c.waitFor(p, "answered elsewhere", `document.getElementById("status").textContent === "Answered on another device"`)
		}
		send(t, door, map[string]any{"type": "hangup", "call_id": id})
		expectOn(t, door, "ended")
		want := []string{
			"Answered on another device",
			"Answered on anna-phone · talked 0:0",
			"Missed call",
		}[:i+1]
		cond := make([]string, len(want))
		for j, w := range want {
			cond[len(want)-1-j] = w
		}
		c.waitFor(p, "the call in her history, newest first", rows+`.replace(/talked 0:0\d/, "talked 0:0") === `+jsString(strings.Join(cond, "|")))
	}

	// The site lets residents open its door from the app.
	// Quay House, her other home, allows neither passes nor opening from the app.
	c.waitFor(p, "the door listed, connected; passes at Harbour View alone", `!document.getElementById("doors").hidden &&
		document.getElementById("d-list").textContent === "front-doorHarbour View · onlineOpen" &&
		[...document.getElementById("p-site").options].map(o => o.textContent).join() === "Harbour View"`)
	c.click(p, "#d-list button")
	if m := expectOn(t, door, "unlock"); m["call_id"] != nil || m["duration_ms"] != 5000.0 {
		c.fail("the door station got %v, want an unlock for the site's 5 s outside a call", m)
	}
	c.waitFor(p, "says the door is open", `document.getElementById("d-opened").textContent === "front-door is open for 5 s"`)

	// Visitor passes: one that opens once, one for any number of times, deleted.
	c.typeInto(p, "#p-label", "Plumber")
	c.click(p, "#p-form button")
	c.waitFor(p, "the pass made", `window.foyer.account.passes.length === 1 && !document.getElementById("p-made").hidden`)
	pin := c.str(p, `window.foyer.account.passes[0].pin`)
	if !strings.Contains(c.str(p, `document.getElementById("p-made").textContent`), pin) ||
		!strings.Contains(c.str(p, `document.getElementById("p-list").textContent`), "Plumber · opens once") {
		c.fail("the new pass %s is not shown with its PIN and use", pin)
	}
	if _, err := eval[bool](p, `(document.getElementById("p-once").checked = false, true)`); err != nil {
		c.fail("unchecking one-time: %v", err)
	}
	c.typeInto(p, "#p-label", "<i>Cleaner</i>") // shown as typed: markup makes no element
	c.click(p, "#p-form button")
	c.waitFor(p, "the second pass made", `window.foyer.account.passes.length === 2 &&
		document.getElementById("p-list").textContent.includes("<i>Cleaner</i> · opens any number of times") && !document.querySelector("#p-list i")`)
	cleaner := c.str(p, `window.foyer.account.passes.find(p => p.label === "<i>Cleaner</i>").pin`)
	c.click(p, `#p-list li:first-child button`) // newest first: the cleaner's
	c.waitFor(p, "the cleaner's pass deleted, its PIN no longer shown", `window.foyer.account.passes.length === 1 &&
		window.foyer.account.passes[0].label === "Plumber" && document.getElementById("p-made").hidden`)
	for _, try := range []struct {
		pin, want string
	}{{pin, "unlock"}, {pin, "error"}, {cleaner, "error"}} {
		send(t, door, map[string]any{"type": "pin", "code": try.pin})
		if m := expectOn(t, door, "unlock", "error"); m["type"] != try.want {
			c.fail("PIN %s at the keypad: %v, want %s", try.pin, m, try.want)
		}
	}
	// Looked at again (as when the phone's screen comes back on), the page shows the pass used.
	if _, err := eval[bool](p, `(document.dispatchEvent(new Event("visibilitychange")), true)`); err != nil {
		c.fail("visibilitychange: %v", err)
	}
	c.waitFor(p, "the plumber's pass shown used", `document.getElementById("p-list").textContent.includes("Plumber · used")`)

	c.screenshot(p, "resident-account")

	// Her session ended elsewhere (a password change on her phone, say): the
	// page notices at its next look, puts the account away and asks her to
	// sign in; signed in again, the browser connects with its new token and
	// rings as before.
	if err := n.acc.EndSession(ctx, c.str(p, `sessionStorage.getItem("foyer-session")`)); err != nil {
		t.Fatal(err)
	}
	if _, err := eval[bool](p, `(document.dispatchEvent(new Event("visibilitychange")), true)`); err != nil {
		c.fail("visibilitychange: %v", err)
	}
	c.waitFor(p, "asked to sign in again", `!document.getElementById("account").hidden && document.getElementById("history").hidden &&
		document.getElementById("a-error").textContent.startsWith("You were signed out")`)
	c.clear(p, "#a-email")
	c.typeInto(p, "#a-email", "anna@example.com")
	c.typeInto(p, "#a-password", "harbour view 101")
	c.click(p, "#account button")
	c.waitFor(p, "connected again, the calls shown", state("idle")+online+` && !document.getElementById("history").hidden &&
		window.foyerTrail.filter((s) => s.endsWith(" opening")).length === 2`)
	send(t, door, map[string]any{"type": "call", "to": "101"})
	id := expectOn(t, door, "calling")["call_id"]
	c.waitFor(p, "rings through the new connection", state("ringing")+online)
	send(t, door, map[string]any{"type": "hangup", "call_id": id})
	c.waitFor(p, "the visitor left, the call in her history", state("ended")+` && window.foyer.account.calls.length === 4`)

	// A long history comes a page at a time: 4 calls so far and 25 older
	// ones, of which the newest 20 show, and the rest on asking.
	site, err := n.store.SiteByName(ctx, "", "Harbour View")
	if err != nil {
		t.Fatal(err)
	}
	var older []accounts.Event
	for i := range 25 {
		older = append(older, accounts.Event{Site: site.ID, Kind: accounts.EventCall, Time: time.Now().Add(-time.Duration(i+1) * time.Hour),
			CallID: fmt.Sprintf("c_old%02d", i), Number: "101", Outcome: "no_answer", People: []directory.UserID{anna.ID}})
	}
	if err := n.acc.LogAll(ctx, older); err != nil {
		t.Fatal(err)
	}
	if _, err := eval[bool](p, `(document.dispatchEvent(new Event("visibilitychange")), true)`); err != nil {
		c.fail("visibilitychange: %v", err)
	}
	const shown = `document.querySelectorAll("#h-list li").length`
	c.waitFor(p, "the newest 20 calls, and a way to older ones", shown+` === 20 && !document.getElementById("h-more").hidden`)
	c.click(p, "#h-more")
	c.waitFor(p, "all 29, the oldest last, nothing more to ask for", shown+` === 29 && document.getElementById("h-more").hidden &&
		window.foyer.account.calls[28].call_id === "c_old24"`)

	// Her devices: the phone removed from here stops ringing (its
	// connection closes); this browser is not offered for removal.
	const devices = `[...document.querySelectorAll("#v-list li")].map(li => li.textContent).sort().join("|")`
	c.waitFor(p, "her devices listed", devices+` === "Anna's laptopthis browser|anna-phoneonlineRemove"`)
	if _, err := eval[bool](p, `(window.confirm = () => true, true)`); err != nil {
		c.fail("confirm: %v", err)
	}
	c.click(p, "#v-list button")
	c.waitFor(p, "the phone removed", devices+` === "Anna's laptopthis browser"`)
	_ = phone.SetReadDeadline(time.Now().Add(browserWait))
	for {
		if _, _, err := phone.ReadMessage(); err != nil {
			break // closed by the server
		}
	}

	session := c.str(p, `sessionStorage.getItem("foyer-session")`)
	c.click(p, "#signout")
	c.waitFor(p, "signed out: the sign-in form again", `!document.getElementById("account").hidden && sessionStorage.length === 0`)
	req, _ := http.NewRequest("GET", n.srv.URL+"/v1/app/me", nil)
	req.Header.Set("Authorization", "Bearer "+session)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("the session after signing out: %d, want 401", res.StatusCode)
	}

	// At the limit of 10 devices a new browser is refused; the page lists
	// her devices, she removes one, and signs in again.
	for i := range 9 {
		n.addAppDevice(t, "anna@example.com", "harbour view 101", fmt.Sprintf("tablet %d", i))
	}
	signIn := func(device string) {
		c.clear(p, "#a-email")
		c.typeInto(p, "#a-email", "anna@example.com")
		c.typeInto(p, "#a-password", "harbour view 101")
		c.clear(p, "#a-device")
		c.typeInto(p, "#a-device", device)
		c.click(p, "#account button")
	}
	signIn("Second browser")
	c.waitFor(p, "refused at the limit, her devices listed", `document.getElementById("a-error").textContent.includes("at most 10 app devices") &&
		document.querySelectorAll("#v-list button").length === 10 && !document.getElementById("account").hidden`)
	if _, err := eval[bool](p, `(window.confirm = () => true, true)`); err != nil {
		c.fail("confirm: %v", err)
	}
	c.click(p, "#v-list li:last-child button")
	c.waitFor(p, "one removed", `document.querySelectorAll("#v-list button").length === 9`)
	signIn("Second browser")
	c.waitFor(p, "connected as the second browser", state("idle")+online+
		` && [...document.querySelectorAll("#v-list li")].some(li => li.textContent === "Second browserthis browser")`)
}

// addAppDevice registers an app device of a person through the API, as
// their app does.
func (n *node) addAppDevice(t *testing.T, addr, password, name string) {
	t.Helper()
	post := func(path, token string, body map[string]string, out any) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", n.srv.URL+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if res.StatusCode/100 != 2 || json.NewDecoder(res.Body).Decode(out) != nil {
			t.Fatalf("POST %s: %d", path, res.StatusCode)
		}
	}
	var login struct{ Token string }
	post("/v1/app/login", "", map[string]string{"email": addr, "password": password}, &login)
	post("/v1/app/devices", login.Token, map[string]string{"name": name}, &struct{}{})
}

// send writes one message to a device's connection.
func send(t *testing.T, ws *websocket.Conn, m map[string]any) {
	t.Helper()
	if err := ws.WriteJSON(m); err != nil {
		t.Fatal(err)
	}
}

// expectOn reads a device's messages until one of the types wanted, and
// returns it.
func expectOn(t *testing.T, ws *websocket.Conn, types ...string) map[string]any {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(browserWait))
	for {
		var m map[string]any
		if err := ws.ReadJSON(&m); err != nil {
			t.Fatalf("waiting for %v: %v", types, err)
		}
		for _, typ := range types {
			if m["type"] == typ {
				return m
			}
		}
	}
}
