package web_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/foyer-intercom/foyer/accounts"
	"github.com/foyer-intercom/foyer/api"
	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/email"
	"github.com/foyer-intercom/foyer/internal/kv"
	"github.com/foyer-intercom/foyer/internal/testtool"
	"github.com/foyer-intercom/foyer/media"
	"github.com/foyer-intercom/foyer/signaling"
	"github.com/foyer-intercom/foyer/web"
)

// chromiumPath is Debian's Chromium (apt-get install chromium).
const chromiumPath = "/usr/bin/chromium"

// browserWait bounds every wait on a page. WebRTC on loopback connects in
// well under a second; a cold headless Chromium starts in a few.
const browserWait = 20 * time.Second

const site = `sites:
  - name: Harbour View
    door_stations: [front-door]
    ids:
      - id: "101"
        name: Jansen
        app_users:
          - email: anna@example.com
            devices: [anna-phone]
`

// server runs a whole node in-process: the bbolt store, media, the hub and
// the pages. It returns the server and the devices' tokens.
func server(t *testing.T) (*httptest.Server, map[string]string) {
	t.Helper()
	return serverWith(t, nil)
}

// serverWith is server with the signalling endpoint's handler wrapped by
// wrap (nil: as it is).
func serverWith(t *testing.T, wrap func(http.Handler) http.Handler) (*httptest.Server, map[string]string) {
	t.Helper()
	return serverFor(t, nodeOptions{provision: site, wrap: wrap})
}

// nodeOptions are what a test sets of its node; the zero value of each is
// the default.
type nodeOptions struct {
	provision string                          // the provisioning file (site)
	wrap      func(http.Handler) http.Handler // wraps the signalling endpoint's handler
	heartbeat time.Duration                   // signaling.Config.Heartbeat
	accounts  bool                            // the API on the node's store: sign-ins, call histories, passes
}

// serverFor is server with the test's own options.
func serverFor(t *testing.T, o nodeOptions) (*httptest.Server, map[string]string) {
	t.Helper()
	n := startNode(t, o)
	return n.srv, n.tokens
}

// node is a whole node run in-process by startNode.
type node struct {
	srv    *httptest.Server
	tokens map[string]string // the provisioned devices' tokens by name
	store  *directory.Bolt
	acc    *accounts.Store // with nodeOptions.accounts only
}

// startNode runs a whole node in-process: the bbolt store, media, the hub
// and the pages, and with o.accounts the API, its accounts and the call
// log (as serve runs them).
func startNode(t *testing.T, o nodeOptions) *node {
	t.Helper()
	provision, wrap := o.provision, o.wrap
	if provision == "" {
		provision = site
	}
	store, err := directory.OpenBolt(filepath.Join(t.TempDir(), "foyer.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	file, err := directory.ParseProvision([]byte(provision))
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := directory.Provision(context.Background(), store, file)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	engine, err := media.NewEngine(media.Config{LoopbackOnly: true}, log)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{tokens: tokens, store: store}
	sigCfg := signaling.Config{Media: engine, Heartbeat: o.heartbeat}
	ctx, cancel := context.WithCancel(context.Background())
	var logged sync.WaitGroup
	mux := http.NewServeMux()
	if o.accounts {
		records, err := kv.NewBolt(store.DB())
		if err != nil {
			t.Fatal(err)
		}
		n.acc = accounts.New(records, nil)
		journal := accounts.NewJournal(n.acc, log)
		logged.Go(func() { journal.Run(ctx) })
		api.HookSignaling(&sigCfg, n.acc, journal)
	}
	hub, err := signaling.NewHub(sigCfg, store, signaling.NewMemory(), nil, prometheus.NewRegistry(), log)
	if err != nil {
		t.Fatal(err)
	}
	go hub.Run(ctx)
	if o.accounts {
		outbox, err := email.NewOutbox(filepath.Join(t.TempDir(), "outbox"), "foyer <noreply@foyer.test>")
		if err != nil {
			t.Fatal(err)
		}
		a, err := api.New(api.Config{Directory: store, Accounts: n.acc, Mail: outbox, PublicURL: "http://foyer.test", Log: log,
			LiveCalls: hub.LiveCalls, Connected: hub.Connected, OpenDoor: hub.OpenDoor})
		if err != nil {
			t.Fatal(err)
		}
		mux.Handle("/v1/", a)
	}
	var signal http.Handler = hub
	if wrap != nil {
		signal = wrap(hub)
	}
	mux.Handle("/v1/signal", signal)
	mux.Handle("/", web.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		drain, stop := context.WithTimeout(context.Background(), 0)
		hub.Drain(drain)
		stop()
		srv.Close()
		cancel()
		logged.Wait()
		_ = engine.Close()
	})
	n.srv = srv
	return n
}

// chromium starts headless Chromium with a fake camera and microphone,
// WebRTC allowed on loopback, and nothing of its own reaching the network.
// Each page then gets its own browser context, like a separate device.
func chromium(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(testtool.Require(t, chromiumPath, "chromium")),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox, // root in a container: no user namespaces for the sandbox
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.WindowSize(480, 900),
		// No traffic of Chromium's own: updates, sync, QUIC probes.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		// A fake camera (a test pattern) and microphone (a beep), granted
		// without a prompt.
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		// ICE on 127.0.0.1 (the only interface in the test's network
		// namespace), with plain addresses rather than mDNS names.
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
	}
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	// The first action starts Chromium, which lives as long as that
	// action's context: no timeout on it.
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return browser
}

// page is one open page in its own browser context, with its console.
type page struct {
	name string
	ctx  context.Context
	mu   sync.Mutex
	logs []string
}

// call holds the pages of a test, to report all of them on a failure.
type call struct {
	t     *testing.T
	pages []*page
}

func (c *call) open(browser context.Context, name, url string) *page {
	c.t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	c.t.Cleanup(cancel)
	p := &page{name: name, ctx: ctx}
	c.pages = append(c.pages, p)
	if err := chromedp.Do(ctx); err != nil { // opens the tab, for as long as ctx lives
		c.fail("open %s: %v", name, err)
	}
	console := chromedp.Console(ctx)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			p.mu.Lock()
			p.logs = append(p.logs, m.String())
			p.mu.Unlock()
		}
	}()
	run, stop := context.WithTimeout(ctx, browserWait)
	defer stop()
	if _, err := chromedp.Call(run, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: signalTrail}); err != nil {
		c.fail("open %s: %v", name, err)
	}
	if err := chromedp.Do(run, chromedp.Navigate(url)); err != nil {
		c.fail("open %s: %v", name, err)
	}
	return p
}

// signalTrail records, in every page, the last 60 signalling messages its
// WebSockets sent and received (pings and pongs aside) and their opening
// and closing, with the time in seconds since the page loaded: fail shows
// them, which a page's state alone does not tell. The messages the page
// sent, pings aside, are kept whole in window.foyerSent (see sent).
const signalTrail = `(() => {
	const trail = window.foyerTrail = [];
	const sent = window.foyerSent = [];
	const note = (s) => {
		trail.push((performance.now() / 1000).toFixed(2) + " " + s);
		if (trail.length > 60) trail.shift();
	};
	const what = (data) => {
		try {
			const m = JSON.parse(data);
			return m.type === "ping" || m.type === "pong" ? "" : m.type + (m.code ? " " + m.code : "") + (m.call_id ? " " + m.call_id : "");
		} catch { return "(not JSON)"; }
	};
	let n = 0;
	window.WebSocket = class extends window.WebSocket {
		constructor(...args) {
			super(...args);
			const id = ++n;
			note("#" + id + " opening");
			this.addEventListener("message", (e) => { const w = what(e.data); if (w) note("#" + id + " <- " + w); });
			this.addEventListener("close", (e) => note("#" + id + " closed " + e.code));
			this.id = id;
		}
		send(data) {
			const w = what(data);
			if (w) note("#" + this.id + " -> " + w);
			if (w && w !== "(not JSON)") sent.push(JSON.parse(data));
			return super.send(data);
		}
	};
})()`

// fail ends the test with every page's state and console.
func (c *call) fail(format string, args ...any) {
	c.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, format, args...)
	for _, p := range c.pages {
		ctx, stop := context.WithTimeout(p.ctx, 2*time.Second)
		status, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.foyer ? window.foyer.state + ": " + document.getElementById("status").textContent : "(no window.foyer)"`))
		if err != nil {
			status = "(unreadable: " + err.Error() + ")"
		}
		trail, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.foyerTrail || []`))
		stop()
		if err != nil {
			trail = []string{"(unreadable: " + err.Error() + ")"}
		}
		p.mu.Lock()
		fmt.Fprintf(&b, "\n--- %s page: %s\n  signalling:\n    %s\n  console:\n    %s", p.name, status,
			strings.Join(trail, "\n    "), strings.Join(p.logs, "\n    "))
		p.mu.Unlock()
	}
	c.t.Fatal(b.String())
}

// eval evaluates a JavaScript expression on a page, awaiting a promise.
func eval[T any](p *page, expr string) (T, error) {
	ctx, stop := context.WithTimeout(p.ctx, browserWait)
	defer stop()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// sent returns the messages of one type a page has sent so far, as JSON.
func (c *call) sent(p *page, typ string) string {
	c.t.Helper()
	s, err := eval[string](p, `JSON.stringify(window.foyerSent.filter((m) => m.type === `+jsString(typ)+`))`)
	if err != nil {
		c.fail("%s page: the %s messages sent: %v", p.name, typ, err)
	}
	return s
}

// click clicks what sel matches with real mouse events, as a person would
// (so media may play with sound).
func (c *call) click(p *page, sel string) {
	c.t.Helper()
	ctx, stop := context.WithTimeout(p.ctx, browserWait)
	defer stop()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		c.fail("%s page: click %s: %v", p.name, sel, err)
	}
}

// waitFor polls a page condition until it is true or browserWait passes.
func (c *call) waitFor(p *page, what, cond string) {
	c.t.Helper()
	deadline := time.Now().Add(browserWait)
	var err error
	for time.Now().Before(deadline) {
		var ok bool
		if ok, err = eval[bool](p, cond); err == nil && ok {
			return
		}
		time.Sleep(100 * time.Millisecond) // polling a page: it has no event to wait on
	}
	c.fail("%s page: %s: not within %v (%s; last error %v)", p.name, what, browserWait, cond, err)
}

// countRequests makes the page count the requests it sends from now on,
// in window.sent.
func (c *call) countRequests(p *page) {
	c.t.Helper()
	if _, err := eval[bool](p, `(window.sent = 0, window.fetch = ((f) => (...a) => (window.sent++, f(...a)))(window.fetch), true)`); err != nil {
		c.fail("%s page: counting requests: %v", p.name, err)
	}
}

// number evaluates a numeric page expression.
func (c *call) number(p *page, expr string) float64 {
	c.t.Helper()
	n, err := eval[float64](p, expr)
	if err != nil {
		c.fail("%s page: %s: %v", p.name, expr, err)
	}
	return n
}

// inbound sums one stat over a page's inbound-rtp reports of one kind, from
// window.foyer.pc (0 without a peer connection).
func inbound(kind, stat string) string {
	return `(async () => { const pc = window.foyer && window.foyer.pc; if (!pc) return 0; let n = 0;
	  (await pc.getStats()).forEach(r => { if (r.type === "inbound-rtp" && r.kind === "` + kind + `") n += r.` + stat + ` || 0; });
	  return n; })()`
}

// grows waits until a page's inbound stat exceeds its current value by more
// than by.
func (c *call) grows(p *page, what, kind, stat string, by float64) {
	c.t.Helper()
	from := c.number(p, inbound(kind, stat))
	c.waitFor(p, what, fmt.Sprintf(`(async () => (await %s) > %v)()`, inbound(kind, stat), from+by))
}

// screenshot saves a page to $FOYER_SCREENSHOTS/<name>.png when that is
// set, to look at the layout during development.
func (c *call) screenshot(p *page, name string) {
	dir := os.Getenv("FOYER_SCREENSHOTS")
	if dir == "" {
		return
	}
	ctx, stop := context.WithTimeout(p.ctx, browserWait)
	defer stop()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		c.t.Logf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		c.t.Logf("screenshot %s: %v", name, err)
	}
}

func state(s string) string { return `window.foyer && window.foyer.state === "` + s + `"` }

func statusStarts(s string) string {
	return `document.getElementById("status").textContent.startsWith(` + fmt.Sprintf("%q", s) + `)`
}

// TestTwoTabsCall: the door station page and the resident page in two
// browser contexts of a real Chromium against a real node, the resident's
// token given in the address, the door's typed into its form. The door dials
// 101 on its keypad; the resident sees the visitor's video decoding while
// it still rings, and hears nothing; after Answer, audio (the fake
// microphones' beeps) flows both ways; the door opens; hang-up ends both.
func TestTwoTabsCall(t *testing.T) {
	browser := chromium(t)
	srv, tokens := server(t)
	c := &call{t: t}

	resident := c.open(browser, "resident", srv.URL+"/resident#token="+tokens["anna-phone"])
	c.waitFor(resident, "connects", state("idle"))
	if url, _ := eval[string](resident, `location.href`); strings.Contains(url, "token") {
		c.fail("the token stays in the address bar: %s", url)
	}
	// The door station's token goes in through the page's form.
	door := c.open(browser, "door", srv.URL+"/door")
	c.waitFor(door, "asks for a token", `!document.getElementById("login").hidden`)
	if _, err := eval[any](door, `document.getElementById("tok").value = `+fmt.Sprintf("%q", tokens["front-door"])); err != nil {
		c.fail("door page: %v", err)
	}
	c.click(door, "#login button")
	c.waitFor(door, "connects", state("ready")+` && document.getElementById("login").hidden`)
	c.waitFor(door, "lists 101", `[...document.querySelectorAll("#directory .entry")].map(b => b.textContent).join() === "Jansen101"`)

	c.dial(door, "101")
	c.waitFor(door, "rings", state("ringing"))
	c.waitFor(resident, "rings", state("ringing"))
	c.waitFor(resident, "shows the caller", `document.getElementById("caller").textContent === "front-door · Harbour View · 101"`)
	c.waitFor(resident, "counts down", `/^Ringing · \d+ s$/.test(document.getElementById("countdown").textContent)`)

	// The preview: frames decoded and shown before anyone answers.
	c.waitFor(resident, "decodes the preview before answering", `(async () => (await `+inbound("video", "framesDecoded")+`) > 0)()`)
	c.waitFor(resident, "shows the preview", `document.getElementById("remote").videoWidth > 0`)
	if c.number(resident, `window.foyer.state === "ringing" ? 1 : 0`) != 1 {
		c.fail("the preview must play while the resident's page still rings")
	}
	if n := c.number(resident, inbound("audio", "packetsReceived")); n != 0 {
		c.fail("the resident heard the door (%v packets) before answering", n)
	}
	c.screenshot(resident, "resident-ringing")
	c.screenshot(door, "door-ringing")

	c.click(resident, "#answer")
	c.waitFor(resident, "talks", state("talking"))
	c.waitFor(door, "shows who answered", state("talking")+` && document.getElementById("status").textContent === "Answered by Jansen"`)
	c.grows(resident, "hears the door", "audio", "packetsReceived", 25)
	c.grows(resident, "hears the door", "audio", "bytesReceived", 1000)
	c.grows(door, "hears the resident", "audio", "packetsReceived", 25)
	c.grows(door, "hears the resident", "audio", "bytesReceived", 1000)
	// The fake microphones beep: the decoded audio is not silence.
	c.waitFor(resident, "hears a sound", `(async () => (await `+inbound("audio", "totalAudioEnergy")+`) > 0)()`)
	c.waitFor(door, "hears a sound", `(async () => (await `+inbound("audio", "totalAudioEnergy")+`) > 0)()`)
	c.waitFor(resident, "plays the sound", `!document.getElementById("remote").muted && !document.getElementById("remote").paused`)
	c.waitFor(door, "plays the sound", `!document.getElementById("remote").paused`)

	c.click(resident, "#open")
	c.waitFor(door, "opens the door", `document.getElementById("unlock").textContent === "Door open for 5 s"`)
	c.waitFor(resident, "confirms the door opened", `document.getElementById("notice").textContent === "Door open for 5 s"`)
	c.screenshot(resident, "resident-talking")
	c.screenshot(door, "door-talking")

	c.click(door, "#hangup")
	c.waitFor(door, "ends the call", state("ended")+` && `+statusStarts("Call ended: hung up after 0:"))
	c.waitFor(resident, "ends the call", state("ended")+` && `+statusStarts("Call ended: hung up after 0:"))
	c.waitFor(resident, "closes its peer connection", `window.foyer.pc === null`)
	c.screenshot(resident, "resident-ended")
	c.screenshot(door, "door-ended")
}

// ringing opens the resident's page (anna-phone) and the door station's,
// dials 101 on the door's keypad, and waits until the resident's page rings.
func ringing(t *testing.T) (c *call, resident, door *page) {
	c, resident, door = connected(t)
	c.dial(door, "101")
	c.waitFor(resident, "rings", state("ringing"))
	return c, resident, door
}

// connected opens the resident's page (anna-phone) and the door station's
// and waits until both are connected.
func connected(t *testing.T) (c *call, resident, door *page) {
	browser := chromium(t)
	srv, tokens := server(t)
	c = &call{t: t}
	resident = c.open(browser, "resident", srv.URL+"/resident#token="+tokens["anna-phone"])
	door = c.open(browser, "door", srv.URL+"/door#token="+tokens["front-door"])
	c.waitFor(resident, "connects", state("idle"))
	c.waitFor(door, "connects", state("ready"))
	return c, resident, door
}

// dial presses number, then Call, on the door station page's keypad.
func (c *call) dial(door *page, number string) {
	c.t.Helper()
	for _, k := range strings.Split(number, "") {
		c.click(door, `#keypad [data-key="`+k+`"]`)
	}
	c.click(door, `#keypad [data-key="Call"]`)
}

// TestSameDoorRingsAgain: a ring for a new call from the door station
// whose earlier call still rings the page takes that call's place: a door
// station has one call at a time, so the earlier one is over (it
// restarted), and in a cluster its cancel can come after the new ring
// (protocol §3): the earlier call's cancel and ended, coming late, leave
// the new call ringing. The ring is handed to the page's message handler
// as the server would send it; a ring from another door station is still
// declined as busy (for this device only), and its call's end changes
// nothing either.
func TestSameDoorRingsAgain(t *testing.T) {
	c, resident, door := ringing(t)
	doorID, err := eval[string](door, `window.foyer.welcome.device_id`)
	if err != nil || doorID == "" {
		c.fail("the door station's device ID: %q, %v", doorID, err)
	}
	earlier := c.str(resident, `window.foyer.callId`)
	ring := func(callID, from string) {
		js := fmt.Sprintf(`window.foyerSignal.h.message({type: "ring", call_id: %q, to: "101", lifetime_ms: 30000, preview: true,
			from: {door_station_id: %q, name: "front-door", site_id: "s_x", site_name: "Harbour View"}}), true`, callID, from)
		if _, err := eval[bool](resident, js); err != nil {
			c.fail("handing the page a ring: %v", err)
		}
	}
	// end hands the page a call's cancel and ended, as late word of it.
	end := func(callID string) {
		js := fmt.Sprintf(`window.foyerSignal.h.message({type: "cancel", call_id: %q, reason: "caller_hangup"}),
			window.foyerSignal.h.message({type: "ended", call_id: %[1]q, reason: "hangup", duration_ms: 0}), true`, callID)
		if _, err := eval[bool](resident, js); err != nil {
			c.fail("handing the page a call's end: %v", err)
		}
	}
	ring("c_again", doorID)
	c.waitFor(resident, "rings for the door station's new call", `window.foyer.callId === "c_again" && `+state("ringing"))
	end(earlier)
	ring("c_other", "d_another_door")
	if id, err := eval[string](resident, `window.foyer.callId`); err != nil || id != "c_again" {
		c.fail("after another door station's ring the page rings for %q (%v), want c_again", id, err)
	}
	c.waitFor(resident, "declines the other door station's call as busy", `window.foyerSent.some((m) =>
		m.type === "decline" && m.call_id === "c_other" && m.scope === "device")`)
	end("c_other")
	if st := c.str(resident, `window.foyer.state + " " + window.foyer.callId`); st != "ringing c_again" {
		c.fail("after the late end of the earlier call and the other door's, the page is %q, want ringing c_again", st)
	}
}

// TestRejoinsCall: one side's connection drops in the middle of a call
// (the resident's, then the door station's). Its page keeps the call,
// reconnects and rejoins (the resident answers again; both restart ICE),
// within the server's rejoin window: the call goes on, with audio both
// ways over the restarted media, the other side never sees it end, and the
// rejoined side's hangup ends it.
func TestRejoinsCall(t *testing.T) {
	for _, tc := range []struct {
		drop    string // the page whose connection drops
		talking string // its status while talking
	}{
		{"resident", "Talking to front-door"},
		{"door", "Answered by Jansen"},
	} {
		t.Run(tc.drop, func(t *testing.T) {
			c, resident, door := ringing(t)
			c.click(resident, "#answer")
			c.waitFor(resident, "talks", state("talking")+` && `+statusStarts("Talking to"))
			c.waitFor(door, "talks", state("talking")+` && `+statusStarts("Answered by"))
			c.grows(door, "hears the resident", "audio", "packetsReceived", 25)
			dropped, other := resident, door
			if tc.drop == "door" {
				dropped, other = door, resident
			}
			const ufrag = `window.foyer.pc.localDescription.sdp.match(/a=ice-ufrag:(\S+)/)[1]`
			before, err := eval[string](dropped, ufrag)
			if err != nil {
				c.fail("%s page: %v", tc.drop, err)
			}

			if _, err := eval[any](dropped, `window.foyerSignal.ws.close()`); err != nil {
				c.fail("%s page: dropping the connection: %v", tc.drop, err)
			}
			c.waitFor(dropped, "says it is rejoining", state("talking")+` && `+statusStarts("Connection lost: rejoining"))
			c.waitFor(dropped, "rejoins", state("talking")+` && `+statusStarts(tc.talking)+
				` && document.getElementById("conn").textContent === "online"`)
			c.waitFor(dropped, "restarts ICE", ufrag+` !== `+fmt.Sprintf("%q", before)+
				` && window.foyer.pc.signalingState === "stable" && window.foyer.pc.connectionState === "connected"`)
			c.grows(resident, "hears the door after the rejoin", "audio", "packetsReceived", 25)
			c.grows(door, "hears the resident after the rejoin", "audio", "packetsReceived", 25)
			if c.number(other, `window.foyer.state === "talking" ? 1 : 0`) != 1 {
				c.fail("the other side's call did not go on")
			}

			c.click(dropped, "#hangup")
			c.waitFor(other, "ends the call", state("ended")+` && `+statusStarts("Call ended: hung up"))
			c.waitFor(dropped, "ends the call", state("ended"))
		})
	}
}

// TestAnswersThroughDrop: the resident's connection drops just as it
// answers. The page keeps answering, reconnects, and sends its answer again;
// the call is taken up either way, with audio both ways, and the door
// station never sees it end.
//   - "answered lost": the answer reached the server, which made this
//     device the winner, but the connection closed before its answered
//     came back (the page closes it right after sending the answer). The
//     answer again rejoins the call, and the page restarts ICE.
//   - "answer not sent": the connection was already gone when Answer was
//     pressed. The call still rings: the device is rung again on
//     reconnecting (a new offer), and the answer sent again wins.
func TestAnswersThroughDrop(t *testing.T) {
	for _, tc := range []struct {
		name string
		drop func(c *call, resident *page)
	}{
		{"answered lost", func(c *call, resident *page) {
			const closeAfterAnswer = `(() => {
				const s = window.foyerSignal, send = s.send.bind(s);
				s.send = (m) => {
					const sent = send(m);
					if (m.type === "answer") { s.send = send; s.ws.close(); }
					return sent;
				};
			})()`
			if _, err := eval[any](resident, closeAfterAnswer); err != nil {
				c.fail("resident page: %v", err)
			}
			c.click(resident, "#answer")
		}},
		{"answer not sent", func(c *call, resident *page) {
			if _, err := eval[any](resident, `window.foyerSignal.ws.close()`); err != nil {
				c.fail("resident page: %v", err)
			}
			c.waitFor(resident, "goes offline", `document.getElementById("conn").textContent === "offline"`)
			c.click(resident, "#answer")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, resident, door := ringing(t)

			tc.drop(c, resident)
			c.waitFor(resident, "is still answering", state("answering"))
			c.waitFor(resident, "talks", state("talking")+` && `+statusStarts("Talking to")+
				` && document.getElementById("conn").textContent === "online"`)
			c.waitFor(door, "talks", state("talking")+` && `+statusStarts("Answered by"))
			c.waitFor(resident, "has its media connected", `window.foyer.pc.signalingState === "stable" && window.foyer.pc.connectionState === "connected"`)
			c.grows(resident, "hears the door", "audio", "packetsReceived", 25)
			c.grows(door, "hears the resident", "audio", "packetsReceived", 25)

			c.click(resident, "#hangup")
			c.waitFor(door, "ends the call", state("ended")+` && `+statusStarts("Call ended: hung up"))
			c.waitFor(resident, "ends the call", state("ended"))
		})
	}
}

// TestOfflinePresses: what the resident does while its connection is down
// is not lost, and a ring that ended meanwhile does not ring on.
//   - "ring ended while away": the door hangs up while the resident's page
//     is offline (no cancel can reach it). Connected again, the page stops
//     ringing, and the next call, placed from the door's directory (which
//     names the site), rings it as usual.
//   - "decline while away": Decline pressed offline goes once connected
//     again; the device, rung again on reconnecting, does not ring, and the
//     door hears the call was declined.
//   - "hang up while rejoining": Hang up pressed while the page waits to
//     rejoin a call ends it once connected again, rather than rejoining.
func TestOfflinePresses(t *testing.T) {
	setup := func(t *testing.T) (*call, *page, *page) {
		c, resident, door := ringing(t)
		c.waitFor(door, "rings", state("ringing"))
		return c, resident, door
	}
	offline := func(c *call, p *page) {
		if _, err := eval[any](p, `window.foyerSignal.ws.close()`); err != nil {
			c.fail("%s page: %v", p.name, err)
		}
		c.waitFor(p, "goes offline", `document.getElementById("conn").textContent === "offline"`)
	}
	const online = ` && document.getElementById("conn").textContent === "online"`

	t.Run("ring ended while away", func(t *testing.T) {
		c, resident, door := setup(t)
		offline(c, resident)
		c.click(door, "#hangup")
		c.waitFor(door, "ends the call", state("ended")+` && `+statusStarts("Call ended: hung up"))
		c.waitFor(resident, "stops ringing once connected again", state("idle")+online)

		const recordCall = `(() => {
			const s = window.foyerSignal, send = s.send.bind(s);
			s.send = (m) => { if (m.type === "call") window.sentCall = m; return send(m); };
		})()`
		if _, err := eval[any](door, recordCall); err != nil {
			c.fail("door page: %v", err)
		}
		c.click(door, "#directory .entry")
		c.waitFor(resident, "rings for the next call", state("ringing"))
		if site, err := eval[string](door, `window.sentCall.to + " " + (window.sentCall.site_id || "")`); err != nil || !strings.HasPrefix(site, "101 s_") {
			c.fail("the directory's call: %q (%v); want 101 and the entry's site", site, err)
		}
	})

	t.Run("decline while away", func(t *testing.T) {
		c, resident, door := setup(t)
		offline(c, resident)
		c.click(resident, "#decline")
		c.waitFor(resident, "shows it declined", state("ended"))
		c.waitFor(door, "hears the call was declined", state("ended")+` && `+statusStarts("Call ended: declined"))
		c.waitFor(resident, "connects again", `document.getElementById("conn").textContent === "online"`)
		if c.number(resident, `window.foyer.state === "ringing" ? 1 : 0`) != 0 {
			c.fail("the declined call rings again")
		}
	})

	t.Run("hang up while rejoining", func(t *testing.T) {
		c, resident, door := setup(t)
		c.click(resident, "#answer")
		c.waitFor(resident, "talks", state("talking"))
		c.waitFor(door, "talks", state("talking"))
		offline(c, resident)
		c.click(resident, "#hangup")
		c.waitFor(door, "ends the call", state("ended")+` && `+statusStarts("Call ended: hung up"))
		c.waitFor(resident, "ends the call", state("ended")+online)
	})
}

// TestConnectionLostMidMedia: Chromium never settles an operation of an
// RTCPeerConnection (setting a description, making an offer or answer,
// adding a candidate) that is still pending when the page closes the
// connection, and a page handles its messages one at a time, awaiting
// each (Signal). A connection lost while the resident's page applies the
// door's offer, or while the door station's page makes its own, closes the
// call's media at that moment; the page must go on reading messages after
// it reconnects. The loss is the page's own (Signal.dead, as when the
// server falls silent), taken inside the media operation, so that it
// always comes while the operation is pending.
//   - "resident": rung again for the call that still rings, the page rings
//     and its preview media connects.
//   - "door": the call ended with the connection; the next one is placed,
//     rings, and its media connects.
func TestConnectionLostMidMedia(t *testing.T) {
	loseConnectionIn := func(op string) string {
		return `(() => {
			const real = RTCPeerConnection.prototype.` + op + `;
			RTCPeerConnection.prototype.` + op + ` = function (...args) {
				const pending = real.apply(this, args);
				if (!window.lostMidMedia) {
					window.lostMidMedia = true;
					window.foyerSignal.dead(window.foyerSignal.ws);
				}
				return pending;
			};
			return true;
		})()`
	}
	const mediaUp = ` && window.foyer.pc && window.foyer.pc.connectionState === "connected"`
	const online = ` && document.getElementById("conn").textContent === "online"`

	t.Run("resident", func(t *testing.T) {
		c, resident, door := connected(t)
		if _, err := eval[bool](resident, loseConnectionIn("setRemoteDescription")); err != nil {
			c.fail("resident page: %v", err)
		}
		c.dial(door, "101")
		c.waitFor(resident, "loses its connection applying the offer", `window.lostMidMedia === true`)
		c.waitFor(resident, "rings again once connected", state("ringing")+online+mediaUp)
		c.waitFor(door, "still rings", state("ringing"))
	})

	t.Run("door", func(t *testing.T) {
		c, resident, door := ringing(t)
		c.click(door, "#hangup")
		c.waitFor(resident, "stops ringing", state("ended"))
		c.waitFor(door, "ends the call", state("ended"))
		if _, err := eval[bool](door, loseConnectionIn("createOffer")); err != nil {
			c.fail("door page: %v", err)
		}
		c.click(door, "#directory .entry")
		c.waitFor(door, "loses its connection making its offer", `window.lostMidMedia === true`)
		c.waitFor(door, "is ready again once connected", state("ready")+online)
		c.click(door, "#directory .entry")
		c.waitFor(door, "rings the next call", state("ringing")+mediaUp)
		c.waitFor(resident, "rings for the next call", state("ringing")+mediaUp)
	})
}

// TestHandshakeNeverAnswered: a server that takes the connection but
// never answers the WebSocket handshake (a stuck node, a proxy that lost
// its upstream) leaves a browser waiting with no time limit of its own.
// The page gives up after its handshake wait and connects again, and this
// time the server answers.
func TestHandshakeNeverAnswered(t *testing.T) {
	var first atomic.Bool
	release := make(chan struct{})
	srv, tokens := serverWith(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if first.CompareAndSwap(false, true) {
				select { // never answered: the page must give up on it
				case <-r.Context().Done():
				case <-release:
				}
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	t.Cleanup(func() { close(release) }) // before the server's close, which waits for its handlers
	browser := chromium(t)
	c := &call{t: t}
	resident := c.open(browser, "resident", srv.URL+"/resident#token="+tokens["anna-phone"])
	c.waitFor(resident, "asks for the first connection", `window.foyerTrail.some((s) => s.endsWith("#1 opening"))`)
	c.waitFor(resident, "gives up on it and connects again", state("idle")+
		` && document.getElementById("conn").textContent === "online" && window.foyerTrail.some((s) => s.endsWith("#2 <- welcome"))`)
}

// TestBackOnline: after a long outage a page waits up to 30 s between
// attempts to connect, longer than a visitor's call rings. When the
// browser says the network is back (its "online" event), the page says it
// reconnects now and connects within a second, instead of waiting out its
// backoff. The backoff is set as after a long outage's failed attempts (the
// next wait 22.5–37.5 s, beyond the test's wait). The test fires the event
// itself: in the loopback-only namespace Chromium counts itself offline
// throughout (navigator.onLine is false), and DevTools' network state
// override fires no event there.
func TestBackOnline(t *testing.T) {
	browser := chromium(t)
	srv, tokens := server(t)
	for _, tc := range []struct{ page, token, idle string }{
		{"resident", "anna-phone", "idle"},
		{"door", "front-door", "ready"},
	} {
		t.Run(tc.page, func(t *testing.T) {
			c := &call{t: t}
			p := c.open(browser, tc.page, srv.URL+"/"+tc.page+"#token="+tokens[tc.token])
			const online = `document.getElementById("conn").textContent === "online"`
			c.waitFor(p, "connects", state(tc.idle)+` && `+online)
			if _, err := eval[any](p, `window.foyerSignal.retry = 10, window.foyerSignal.ws.close()`); err != nil {
				c.fail("%s page: %v", tc.page, err)
			}
			c.waitFor(p, "goes offline", `document.getElementById("conn").textContent === "offline"`+
				` && `+statusStarts("Connection lost. Reconnecting in "))
			// The status is read in the same evaluation as the event: the
			// reconnect's timer cannot have fired yet.
			status, err := eval[string](p, `window.dispatchEvent(new Event("online")), document.getElementById("status").textContent`)
			if err != nil {
				c.fail("%s page: %v", tc.page, err)
			}
			if want := "Back online. Reconnecting…"; status != want {
				c.fail("%s page, back online, says %q, want %q", tc.page, status, want)
			}
			c.waitFor(p, "connects again without waiting out its backoff", state(tc.idle)+` && `+online+
				` && window.foyerTrail.some((s) => s.endsWith("#2 <- welcome"))`)
		})
	}
}

// TestDoorCallRefused: the door station page matches the answers to its
// call message by the ref it put on it: a number nobody can answer ends
// unavailable, an unknown one says it cannot call, and the page can dial
// again after each.
func TestDoorCallRefused(t *testing.T) {
	browser := chromium(t)
	srv, tokens := server(t)
	c := &call{t: t}
	door := c.open(browser, "door", srv.URL+"/door#token="+tokens["front-door"])
	c.waitFor(door, "connects", state("ready"))
	c.dial(door, "101") // nobody of 101 is connected
	c.waitFor(door, "hears nobody can be reached", state("ended")+` && `+statusStarts("Call ended: nobody can be reached"))
	c.dial(door, "999")
	c.waitFor(door, "cannot call an unknown number", state("ended")+` && `+statusStarts("Cannot call:"))
}
