package web_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/media"
	"github.com/foyer-intercom/foyer/signaling"
	"github.com/foyer-intercom/foyer/web"
)

// browserWait bounds each wait on a page; WebRTC on loopback takes well
// under a second, a cold headless Chromium a few.
const browserWait = 30 * time.Second

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

// server runs the whole node in-process: store, media, hub, pages.
func server(t *testing.T) (*httptest.Server, map[string]string) {
	t.Helper()
	store, err := directory.OpenBolt(filepath.Join(t.TempDir(), "foyer.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	file, err := directory.ParseProvision([]byte(site))
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
	hub, err := signaling.NewHub(signaling.Config{Media: engine}, store, signaling.NewMemory(), nil, prometheus.NewRegistry(), log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go hub.Run(ctx)
	mux := http.NewServeMux()
	mux.Handle("GET /v1/signal", hub)
	mux.Handle("/", web.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		drain, stop := context.WithTimeout(context.Background(), 0)
		hub.Drain(drain)
		stop()
		srv.Close()
		cancel()
		_ = engine.Close()
	})
	return srv, tokens
}

// chromium starts Debian's headless Chromium and returns its first tab's
// context, from which each page gets its own browser context. It runs
// with a fake camera and
// microphone, WebRTC allowed on loopback, and nothing reaching the network.
func chromium(t *testing.T) context.Context {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("FOYER_REQUIRE_TOOLS") == "1" {
			t.Fatal("chromium is not installed (apt-get install chromium); make test installs it")
		}
		t.Skip("chromium is not installed; `make test` installs it (apt-get install chromium)")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
	}
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	if _, err := chromedp.Run(browser, chromedp.Navigate("about:blank")); err != nil { // starts Chromium
		t.Fatalf("starting chromium: %v", err)
	}
	return browser
}

// tab opens url in its own browser context (like a separate device).
func tab(t *testing.T, alloc context.Context, url string) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(alloc, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if _, err := chromedp.Run(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	return ctx
}

// eval evaluates a JS expression on a page, awaiting a promise.
func eval[T any](ctx context.Context, expr string) (T, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// click clicks the element sel matches, as a person would.
func click(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	if _, err := eval[bool](ctx, `(document.querySelector(`+"`"+sel+"`"+`).click(), true)`); err != nil {
		t.Fatalf("click %s: %v", sel, err)
	}
}

// waitFor polls cond on a page until it is true or browserWait passes.
func waitFor(t *testing.T, ctx context.Context, what, cond string) {
	t.Helper()
	deadline := time.Now().Add(browserWait)
	for {
		if ok, err := eval[bool](ctx, cond); err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			status, _ := eval[string](ctx, `document.getElementById("status").textContent`)
			t.Fatalf("%s: not within %v (page status: %q)", what, browserWait, status)
		}
		time.Sleep(100 * time.Millisecond) // polling a page we do not control
	}
}

// above is a page condition: the sum of stat over the page's inbound-rtp
// reports of kind exceeds n.
func above(kind, stat string, n int) string {
	return `(async () => (await ` + inbound(kind, stat) + `) > ` + strconv.Itoa(n) + `)()`
}

// inbound sums a stat of the page's inbound-rtp reports of one kind (a
// promise, for eval to await).
func inbound(kind, stat string) string {
	return `(async () => { const pc = window.foyer && window.foyer.pc; if (!pc) return 0; let n = 0;
	  (await pc.getStats()).forEach(r => { if (r.type === "inbound-rtp" && r.kind === "` + kind + `") n += r.` + stat + ` || 0; });
	  return n; })()`
}

// TestTwoTabsCall: the door station page and the resident page in two
// browser contexts; the resident sees the preview decoding before
// answering, and after answering audio flows both ways.
func TestTwoTabsCall(t *testing.T) {
	alloc := chromium(t)
	srv, tokens := server(t)
	resident := tab(t, alloc, srv.URL+"/resident#token="+tokens["anna-phone"])
	waitFor(t, resident, "the resident page connects", `window.foyer.status === "Waiting for visitors"`)
	door := tab(t, alloc, srv.URL+"/door#token="+tokens["front-door"])
	waitFor(t, door, "the door page lists 101", `document.querySelectorAll("#directory button").length === 1`)

	click(t, door, "#directory button")
	waitFor(t, resident, "the resident page rings", `window.foyer.status.startsWith("Ringing")`)
	waitFor(t, resident, "the preview decodes before answering", above("video", "framesDecoded", 0))
	if status, err := eval[string](resident, `window.foyer.status`); err != nil || !strings.HasPrefix(status, "Ringing") {
		t.Fatalf("the preview should play while ringing; status %q (%v)", status, err)
	}
	if audioBefore, _ := eval[float64](resident, inbound("audio", "packetsReceived")); audioBefore != 0 {
		t.Fatalf("the resident heard the door (%v packets) before answering", audioBefore)
	}

	click(t, resident, "#answer")
	waitFor(t, resident, "the resident page talks", `window.foyer.status === "Talking"`)
	waitFor(t, door, "the door page shows who answered", `document.getElementById("status").textContent.startsWith("Answered by")`)
	waitFor(t, resident, "the resident hears the door", above("audio", "packetsReceived", 20))
	waitFor(t, door, "the door hears the resident", above("audio", "packetsReceived", 20))

	click(t, door, "#hangup")
	waitFor(t, door, "the door page ends the call", `document.getElementById("status").textContent.startsWith("Call ended")`)
	waitFor(t, resident, "the resident page ends the call", `document.getElementById("status").textContent.startsWith("Call ended")`)
}
