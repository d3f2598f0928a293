package web_test

import (
	"context"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/foyer-intercom/foyer/accounts"
	"github.com/foyer-intercom/foyer/directory"
)

// TestDoorKeypad: the door station's keypad takes up to six digits (the
// longest call ID), ⌫ takes the last one back, and the keyboard's digits,
// Backspace and Enter do the same as the keys; the number dialled is
// cleared when the call ends, ready for the next visitor.
func TestDoorKeypad(t *testing.T) {
	c, resident, door := connected(t)
	const dialled = `document.getElementById("dial").textContent`
	press := func(keys ...string) {
		for _, k := range keys {
			c.click(door, `#keypad [data-key="`+k+`"]`)
		}
	}
	press("1", "2", "3", "4", "5", "6", "7")
	if s := c.str(door, dialled); s != "123456" {
		c.fail("seven digits pressed show %q, want the first six, 123456", s)
	}
	press("⌫", "⌫", "⌫", "⌫", "⌫", "⌫")
	if s := c.str(door, dialled); s != "—" {
		c.fail("after ⌫ for each digit the number shows %q, want — (none)", s)
	}
	press("1", "0", "2", "⌫", "1")
	if s := c.str(door, dialled); s != "101" {
		c.fail("1 0 2 ⌫ 1 shows %q, want 101", s)
	}
	press("Call")
	c.waitFor(resident, "rings for 101", state("ringing"))
	c.waitFor(door, "rings", state("ringing"))
	c.click(door, "#hangup")
	c.waitFor(door, "ends the call, the number cleared", state("ended")+` && `+dialled+` === "—"`)
	c.waitFor(resident, "stops ringing", state("ended"))

	keys, stop := context.WithTimeout(door.ctx, browserWait)
	defer stop()
	if err := chromedp.Do(keys, chromedp.KeyEvent("109"), chromedp.KeyEvent("\b"), chromedp.KeyEvent("1")); err != nil {
		c.fail("door page: typing: %v", err)
	}
	if s := c.str(door, dialled); s != "101" {
		c.fail("typed 1 0 9 Backspace 1 shows %q, want 101", s)
	}
	if err := chromedp.Do(keys, chromedp.KeyEvent("\r")); err != nil {
		c.fail("door page: typing Enter: %v", err)
	}
	c.waitFor(resident, "rings for the number typed", state("ringing"))
}

// TestDoorHangUpWhileDialing: Hang up pressed while the door station
// still takes its camera and microphone (before the call is placed) calls
// nobody: the page says the call was cancelled, sends no call, and the
// resident's page never rings. The test holds the camera back until
// Hang up is pressed.
func TestDoorHangUpWhileDialing(t *testing.T) {
	c, resident, door := connected(t)
	const holdCamera = `(() => {
		const real = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
		let release;
		window.releaseCamera = new Promise((r) => { release = r; });
		window.releaseCamera.go = release;
		navigator.mediaDevices.getUserMedia = (c) => { window.cameraAsked = true; return window.releaseCamera.then(() => real(c)); };
		return true;
	})()`
	if _, err := eval[bool](door, holdCamera); err != nil {
		c.fail("door page: %v", err)
	}
	c.dial(door, "101")
	c.waitFor(door, "dials, waiting for its camera", state("dialing")+` && window.cameraAsked === true`)
	c.click(door, "#hangup")
	if _, err := eval[bool](door, `(window.releaseCamera.go(), true)`); err != nil {
		c.fail("door page: %v", err)
	}
	c.waitFor(door, "says the call was cancelled", state("ended")+` && document.getElementById("status").textContent === "Call cancelled"`+
		` && document.getElementById("self").srcObject === null`)
	if s := c.sent(door, "call"); s != "[]" {
		c.fail("the door station sent %s after Hang up, want no call", s)
	}
	if c.number(resident, `window.foyerTrail.some((s) => s.includes("<- ring")) ? 1 : 0`) == 1 {
		c.fail("the resident's page was rung for a call hung up before it was placed")
	}
	c.dial(door, "101")
	c.waitFor(resident, "rings for the next call", state("ringing"))
}

// TestDoorOpenBanner: when the resident opens the door, the door station
// says so and counts the seconds the lock stays open (5 s by default)
// down to none, then stops saying it: a visitor is not told the door is
// open after it has locked again.
func TestDoorOpenBanner(t *testing.T) {
	c, resident, door := ringing(t)
	c.click(resident, "#answer")
	c.waitFor(resident, "talks", state("talking"))
	c.waitFor(door, "talks", state("talking"))
	// What the banner says, each time it changes: recorded by the page
	// itself, so that no second of it can pass between two looks.
	const record = `(() => {
		const b = document.getElementById("unlock");
		window.banner = [];
		new MutationObserver(() => {
			const now = b.hidden ? "hidden" : b.textContent;
			if (window.banner[window.banner.length - 1] !== now) window.banner.push(now);
		}).observe(b, { attributes: true, childList: true, characterData: true, subtree: true });
		return true;
	})()`
	if _, err := eval[bool](door, record); err != nil {
		c.fail("door page: %v", err)
	}
	c.click(resident, "#open")
	c.waitFor(door, "says the door is open, then stops", `window.banner.length > 0 && window.banner[window.banner.length - 1] === "hidden"`)
	want := `Door open for 5 s|Door open for 4 s|Door open for 3 s|Door open for 2 s|Door open for 1 s|hidden`
	if got := c.str(door, `window.banner.join("|")`); got != want {
		c.fail("the door station's banner said %q, want %q", got, want)
	}
	if s := c.sent(resident, "open_door"); s != `[{"type":"open_door","call_id":"`+c.str(door, `window.foyer.callId`)+`","relay":1}]` {
		c.fail("the resident's page sent %s for one press of Open door, want one open_door naming the call and relay 1", s)
	}
}

// TestDoorCode: "Enter a code" switches the door station's keypad to an
// access code: up to eight digits (the longest code), shown as dots, sent
// with Open. A code of the site opens the door; a wrong one says so; after
// each the keypad dials call IDs again.
func TestDoorCode(t *testing.T) {
	n := startNode(t, nodeOptions{accounts: true})
	ctx := context.Background()
	sites, err := n.store.Sites(ctx)
	if err != nil || len(sites) != 1 {
		t.Fatalf("sites: %v, %v", sites, err)
	}
	gate, err := n.store.DeviceByName(ctx, directory.KindDoorStation, string(sites[0].ID), "front-door")
	if err != nil {
		t.Fatal(err)
	}
	anna, err := n.store.UserByEmail(ctx, "anna@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.acc.PutCode(ctx, accounts.AccessCode{Site: sites[0].ID, User: anna.ID, PIN: "47110815", Doors: []directory.DeviceID{gate.ID}}); err != nil {
		t.Fatal(err)
	}
	browser := chromium(t)
	c := &call{t: t}
	door := c.open(browser, "door", n.srv.URL+"/door#token="+n.tokens["front-door"])
	c.waitFor(door, "connects", state("ready"))
	const dialled = `document.getElementById("dial").textContent`
	press := func(keys ...string) {
		for _, k := range keys {
			c.click(door, `#keypad [data-key="`+k+`"]`)
		}
	}
	c.click(door, "#code")
	press("4", "7", "1", "1", "0", "8", "1", "5", "9")
	if s := c.str(door, dialled); s != "••••••••" {
		c.fail("a code of nine digits typed shows %q, want eight dots", s)
	}
	press("Call")
	c.waitFor(door, "the door opens", `!document.getElementById("unlock").hidden && document.getElementById("status").textContent === "Come in: the door is open" && `+
		dialled+` === "—" && document.querySelector('#keypad [data-key="Call"]').textContent === "Call"`)
	c.click(door, "#code")
	press("4", "7", "1", "2", "Call")
	c.waitFor(door, "a wrong code refused", `document.getElementById("status").textContent === "Wrong code"`)
}
