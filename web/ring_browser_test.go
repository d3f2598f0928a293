package web_test

import (
	"strconv"
	"strings"
	"testing"
)

// twoDevices is a site whose ID 101 rings two app devices of Anna's: her
// phone and her tablet.
const twoDevices = `sites:
  - name: Harbour View
    door_stations: [front-door]
    ids:
      - id: "101"
        name: Jansen
        app_users:
          - email: anna@example.com
            devices: [anna-phone, anna-tablet]
`

// TestAnsweredElsewhere: a call rings two devices of one resident. When
// one answers, the other stops ringing (its preview's media closed, its
// countdown gone) and says the call was answered on another device, not
// that it was missed; the one that answered sent its answer once and
// shows no countdown while talking. A decline for everyone on one device
// stops the other ringing and ends the call as declined; a decline of one
// device's ring leaves the other ringing, and it can answer.
func TestAnsweredElsewhere(t *testing.T) {
	browser := chromium(t)
	srv, tokens := serverFor(t, nodeOptions{provision: twoDevices})
	c := &call{t: t}
	phone := c.open(browser, "phone", srv.URL+"/resident#token="+tokens["anna-phone"])
	tablet := c.open(browser, "tablet", srv.URL+"/resident#token="+tokens["anna-tablet"])
	door := c.open(browser, "door", srv.URL+"/door#token="+tokens["front-door"])
	c.waitFor(phone, "connects", state("idle"))
	c.waitFor(tablet, "connects", state("idle"))
	c.waitFor(door, "connects", state("ready"))
	const mediaUp = ` && window.foyer.pc && window.foyer.pc.connectionState === "connected"`
	// stopped is a page that rang and no longer does: nothing of the call
	// left on it, and why it stopped in its status.
	stopped := func(why string) string {
		return state("ended") + ` && document.getElementById("status").textContent === ` + jsString(why) + ` &&
			window.foyer.pc === null && document.getElementById("remote").srcObject === null &&
			document.getElementById("countdown").textContent === "" && document.getElementById("callview").hidden`
	}

	c.dial(door, "101")
	c.waitFor(phone, "rings with the preview", state("ringing")+mediaUp)
	c.waitFor(tablet, "rings with the preview", state("ringing")+mediaUp)
	c.click(phone, "#answer")
	c.waitFor(phone, "talks", state("talking")+` && `+statusStarts("Talking to front-door"))
	c.waitFor(door, "talks", state("talking")+` && document.getElementById("status").textContent === "Answered by Jansen"`)
	c.waitFor(tablet, "stops ringing: answered on another device", stopped("Answered on another device"))
	if s := c.sent(phone, "answer"); s != `[{"type":"answer","call_id":"`+c.str(door, `window.foyer.callId`)+`"}]` {
		c.fail("the phone sent %s for one press of Answer, want one answer naming the call", s)
	}
	if cd := c.str(phone, `document.getElementById("countdown").textContent`); cd != "" {
		c.fail("the phone shows %q while talking, want no ring countdown", cd)
	}
	c.click(door, "#hangup")
	c.waitFor(phone, "ends the call", state("ended")+` && `+statusStarts("Call ended: hung up"))
	if s := c.sent(tablet, "answer") + c.sent(tablet, "decline"); s != "[][]" {
		c.fail("the tablet sent %s: it was never pressed", s)
	}

	c.dial(door, "101")
	c.waitFor(phone, "rings", state("ringing")+mediaUp)
	c.waitFor(tablet, "rings", state("ringing")+mediaUp)
	c.click(tablet, "#declineAll")
	c.waitFor(tablet, "says it declined for everyone", stopped("Declined for everyone"))
	c.waitFor(phone, "stops ringing: declined on another device", stopped("Declined on another device"))
	c.waitFor(door, "hears the call was declined", state("ended")+` && `+statusStarts("Call ended: declined"))

	c.dial(door, "101")
	c.waitFor(phone, "rings", state("ringing")+mediaUp)
	c.waitFor(tablet, "rings", state("ringing")+mediaUp)
	c.click(tablet, "#decline")
	c.waitFor(tablet, "says it declined", stopped("Declined"))
	c.click(phone, "#answer")
	c.waitFor(phone, "answers the call the tablet declined for itself", state("talking"))
	c.waitFor(door, "talks", state("talking"))
}

// str evaluates a string page expression.
func (c *call) str(p *page, expr string) string {
	c.t.Helper()
	s, err := eval[string](p, expr)
	if err != nil {
		c.fail("%s page: %s: %v", p.name, expr, err)
	}
	return s
}

// markup is a site whose names are HTML: a page that inserted one as
// markup would make an element (its own id) of it.
const markup = `sites:
  - name: "<img src=x id=site-markup>"
    door_stations: ["<img src=x id=door-markup>"]
    ids:
      - id: "101"
        name: "<b id=name-markup>Jansen</b>"
        app_users:
          - email: anna@example.com
            devices: [anna-phone]
`

// TestNamesShownAsText: the names a page shows come from the directory,
// which an installer, a CSV import or a resident fills in; the pages insert
// them as text. The door station's directory lists the ID's name, the
// resident's page shows the door station's and the site's names while it
// rings, and both say who is talking; each shows the markup as typed and
// makes no element of it. (The Content-Security-Policy would block an
// inline onerror script besides; an <img> of another origin, a form or a
// link would not be blocked by it.)
func TestNamesShownAsText(t *testing.T) {
	browser := chromium(t)
	srv, tokens := serverFor(t, nodeOptions{provision: markup})
	c := &call{t: t}
	resident := c.open(browser, "resident", srv.URL+"/resident#token="+tokens["anna-phone"])
	door := c.open(browser, "door", srv.URL+"/door#token="+tokens["<img src=x id=door-markup>"])
	c.waitFor(resident, "connects", state("idle"))
	c.waitFor(door, "connects", state("ready"))
	const noMarkup = ` && !document.querySelector("#site-markup, #door-markup, #name-markup, main img, main b")`
	c.waitFor(door, "lists the ID's name as text", `[...document.querySelectorAll("#directory .entry .name")].map(s => s.textContent).join() === "<b id=name-markup>Jansen</b>"`+noMarkup)

	c.dial(door, "101")
	c.waitFor(resident, "rings, showing the door's and the site's names as text", state("ringing")+
		` && document.getElementById("caller").textContent === "<img src=x id=door-markup> · <img src=x id=site-markup> · 101"`+
		` && document.getElementById("status").textContent === "<img src=x id=door-markup> is calling"`+noMarkup)
	c.click(resident, "#answer")
	c.waitFor(resident, "talks", state("talking")+` && document.getElementById("status").textContent === "Talking to <img src=x id=door-markup>"`+noMarkup)
	c.waitFor(door, "says who answered as text", state("talking")+` && document.getElementById("status").textContent === "Answered by <b id=name-markup>Jansen</b>"`+noMarkup)
}

// TestNoPreview: a site may keep the visitor's picture from residents
// until one answers (preview off). The ringing page says there is no
// picture before answering, and receives no video; answered, it shows the
// visitor, without the notice over the picture. With the preview on (the
// default), the notice is never shown.
func TestNoPreview(t *testing.T) {
	browser := chromium(t)
	for _, tc := range []struct {
		name    string
		preview bool
	}{{"off", false}, {"on", true}} {
		t.Run(tc.name, func(t *testing.T) {
			provision := strings.Replace(site, "  - name: Harbour View\n", "  - name: Harbour View\n    preview: "+strconv.FormatBool(tc.preview)+"\n", 1)
			srv, tokens := serverFor(t, nodeOptions{provision: provision})
			c := &call{t: t}
			resident := c.open(browser, "resident", srv.URL+"/resident#token="+tokens["anna-phone"])
			door := c.open(browser, "door", srv.URL+"/door#token="+tokens["front-door"])
			c.waitFor(resident, "connects", state("idle"))
			c.waitFor(door, "connects", state("ready"))
			const notice = `(document.getElementById("nopreview").getClientRects().length > 0)`
			c.dial(door, "101")
			c.waitFor(resident, "rings with its media connected", state("ringing")+
				` && window.foyer.pc && window.foyer.pc.connectionState === "connected"`)
			if tc.preview {
				c.waitFor(resident, "shows the preview", `document.getElementById("remote").videoWidth > 0`)
			}
			if shown := c.number(resident, notice+` ? 1 : 0`) == 1; shown == tc.preview {
				c.fail("preview %v: the notice 'No picture before you answer' shown: %v", tc.preview, shown)
			}
			if !tc.preview {
				if n := c.number(resident, inbound("video", "framesDecoded")); n != 0 {
					c.fail("preview off: the ringing page decoded %v frames of the visitor", n)
				}
			}
			c.click(resident, "#answer")
			c.waitFor(resident, "talks, showing the visitor", state("talking")+` && document.getElementById("remote").videoWidth > 0`)
			if c.number(resident, notice+` ? 1 : 0`) == 1 {
				c.fail("preview %v: talking, the notice 'No picture before you answer' is shown over the visitor's picture", tc.preview)
			}
		})
	}
}
