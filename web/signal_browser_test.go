package web_test

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/foyer-intercom/foyer/internal/silentproxy"
)

// TestDeviceToken: a page keeps its device's token for the tab, so that
// a reload connects again without asking for it. A token the server
// refuses (4001) is dropped: the page says so and asks for one, instead
// of trying again and again; the right token typed into its form
// connects. A device that connects from another window (4009) leaves the
// first window offline, saying why, rather than the two taking the
// connection from each other in turn.
func TestDeviceToken(t *testing.T) {
	browser := chromium(t)
	srv, tokens := server(t)
	c := &call{t: t}
	const online = ` && document.getElementById("conn").textContent === "online"`

	first := c.open(browser, "first", srv.URL+"/resident#token="+tokens["anna-phone"])
	c.waitFor(first, "connects", state("idle")+online)
	reload, stop := context.WithTimeout(first.ctx, browserWait)
	if err := chromedp.Do(reload, chromedp.Reload()); err != nil {
		c.fail("first page: reload: %v", err)
	}
	stop()
	c.waitFor(first, "connects again after a reload, without asking for the token", state("idle")+online+
		` && document.getElementById("login").hidden`)

	second := c.open(browser, "second", srv.URL+"/resident#token="+tokens["anna-phone"])
	c.waitFor(second, "connects", state("idle")+online)
	c.waitFor(first, "says the device connected elsewhere and stays offline", state("offline")+
		` && document.getElementById("status").textContent === "This device connected from another window or app."`+
		` && document.getElementById("conn").textContent === "offline"`)
	c.waitFor(second, "keeps its connection", state("idle")+online+` && !window.foyerTrail.some((s) => s.includes("#1 closed"))`)

	bad := c.open(browser, "bad token", srv.URL+"/door#token=not-a-token")
	c.waitFor(bad, "says the token was refused and asks for one", state("offline")+
		` && document.getElementById("status").textContent === "The token was refused. Enter a valid device token."`+
		` && !document.getElementById("login").hidden && sessionStorage.getItem("foyer-token") === null`)
	if n := c.number(bad, `window.foyerTrail.filter((s) => s.endsWith(" opening")).length`); n != 1 {
		c.fail("the page connected %v times with a refused token, want once", n)
	}
	if _, err := eval[any](bad, `document.getElementById("tok").value = `+jsString(tokens["front-door"])); err != nil {
		c.fail("bad token page: %v", err)
	}
	c.click(bad, "#login button")
	c.waitFor(bad, "connects with the token typed", state("ready")+online+` && document.getElementById("login").hidden`)
}

// TestReconnectBackoff: a page whose connection drops tries again after
// a wait that doubles with each failed attempt (1, 2, 4, 8 s, each ±25 %),
// and says how long it waits; once a connection has lasted, the next drop
// starts from the shortest wait again. The server refuses the WebSocket
// upgrade meanwhile, as a node behind a proxy that lost it would.
func TestReconnectBackoff(t *testing.T) {
	var refuse atomic.Bool
	srv, tokens := serverWith(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if refuse.Load() {
				http.Error(w, "unavailable", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	browser := chromium(t)
	c := &call{t: t}
	p := c.open(browser, "resident", srv.URL+"/resident#token="+tokens["anna-phone"])
	const online = ` && document.getElementById("conn").textContent === "online"`
	c.waitFor(p, "connects", state("idle")+online)
	// The page's waits, in seconds, as its status says them.
	const record = `(() => {
		window.waits = [];
		new MutationObserver(() => {
			const m = document.getElementById("status").textContent.match(/^Connection lost\. Reconnecting in (\d+) s/);
			if (m) window.waits.push(+m[1]);
		}).observe(document.getElementById("status"), { childList: true, characterData: true, subtree: true });
		return true;
	})()`
	if _, err := eval[bool](p, record); err != nil {
		c.fail("resident page: %v", err)
	}
	waits := func() []int {
		s := c.str(p, `window.waits.join(" ")`)
		var out []int
		for _, f := range regexp.MustCompile(`\d+`).FindAllString(s, -1) {
			n, _ := strconv.Atoi(f)
			out = append(out, n)
		}
		return out
	}

	refuse.Store(true)
	if _, err := eval[any](p, `window.foyerSignal.ws.close()`); err != nil {
		c.fail("resident page: %v", err)
	}
	// 1 s (0.75–1.25), 2 s (1.5–2.5), 4 s (3–5), then 8 s (6–10): said as
	// 1–2, 2–3, 3–5, 6–10.
	c.waitFor(p, "waits longer after each failed attempt", `window.waits.length >= 4`)
	w := waits()
	if w[0] > 2 || w[1] < 2 || w[1] > 3 || w[2] < 3 || w[2] > 5 || w[3] < 6 || w[3] > 10 {
		c.fail("the waits after each failed attempt: %v s, want 1–2, 2–3, 3–5, 6–10", w)
	}

	refuse.Store(false)
	if _, err := eval[any](p, `window.dispatchEvent(new Event("online"))`); err != nil { // rather than the 8 s wait
		c.fail("resident page: %v", err)
	}
	c.waitFor(p, "connects again", state("idle")+online)
	// A connection counts as lasting after 10 s.
	c.waitFor(p, "has kept its connection", `window.foyerSignal.retry === 0`)
	if _, err := eval[any](p, `window.waits = [], window.foyerSignal.ws.close()`); err != nil {
		c.fail("resident page: %v", err)
	}
	c.waitFor(p, "says how long it waits", `window.waits.length >= 1`)
	if w := waits(); w[0] > 2 {
		c.fail("after a connection that lasted, the page waits %d s, want the shortest wait (1–2 s) again", w[0])
	}
	c.waitFor(p, "connects again", state("idle")+online)
}

// TestSilentLink: a connection whose link goes silent without closing (a
// phone whose Wi-Fi went away, a NAT that forgot the mapping) is given up
// by the page when its pings get nothing back, within two heartbeats, and
// the page connects again; an answered call is rejoined within the
// server's rejoin window and goes on, and the door station never sees it
// end. The resident's page reaches the node through a proxy that stops
// passing anything, closes included, on the connections it has when the
// link goes silent; the door station's goes to the node directly.
func TestSilentLink(t *testing.T) {
	srv, tokens := serverFor(t, nodeOptions{heartbeat: 2 * time.Second})
	link := silentproxy.Start(t, strings.TrimPrefix(srv.URL, "http://"))
	browser := chromium(t)
	c := &call{t: t}
	resident := c.open(browser, "resident", "http://"+link.Addr()+"/resident#token="+tokens["anna-phone"])
	door := c.open(browser, "door", srv.URL+"/door#token="+tokens["front-door"])
	c.waitFor(resident, "connects", state("idle"))
	c.waitFor(door, "connects", state("ready"))
	c.dial(door, "101")
	c.waitFor(resident, "rings", state("ringing"))
	c.click(resident, "#answer")
	c.waitFor(resident, "talks", state("talking")+` && `+statusStarts("Talking to"))
	c.waitFor(door, "talks", state("talking"))

	link.Silence()
	c.waitFor(resident, "rejoins through a new connection", state("talking")+` && `+statusStarts("Talking to")+
		` && document.getElementById("conn").textContent === "online" && window.foyerTrail.some((s) => s.includes(" #2 <- answered "))`)
	if c.number(door, `window.foyer.state === "talking" ? 1 : 0`) != 1 {
		c.fail("the door station's call did not go on")
	}
	c.grows(door, "hears the resident after the rejoin", "audio", "packetsReceived", 25)
	c.click(resident, "#hangup")
	c.waitFor(door, "ends the call", state("ended")+` && `+statusStarts("Call ended: hung up"))
}
