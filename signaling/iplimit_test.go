package signaling

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// dialFrom opens /v1/signal from a chosen loopback source address.
func dialFrom(ts *testServer, src string, header http.Header) (*websocket.Conn, *http.Response, error) {
	nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	d := websocket.Dialer{NetDialContext: nd.DialContext, HandshakeTimeout: readTimeout}
	return d.DialContext(context.Background(), ts.url(), header)
}

// TestUpgradeRatePerAddress: one address over its connection rate gets 429
// with Retry-After before any upgrade, while another address connects.
func TestUpgradeRatePerAddress(t *testing.T) {
	ts := newTestServer(t, harborView, Config{UpgradeRate: 0.5, UpgradeBurst: 3})
	for i := range 3 {
		ws, _, err := dialFrom(ts, "127.0.0.1", nil)
		if err != nil {
			t.Fatalf("connection %d within the burst: %v", i+1, err)
		}
		ws.Close()
	}
	_, resp, err := dialFrom(ts, "127.0.0.1", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("fourth connection from one address: %v %v, want 429 with Retry-After", err, resp)
	}
	if n := testutil.ToFloat64(ts.hub.metrics.rateLimited.WithLabelValues("upgrade")); n != 1 {
		t.Errorf("foyer_signaling_rate_limited_total{what=\"upgrade\"} = %v, want 1", n)
	}
	ws, _, err := dialFrom(ts, "127.0.0.2", nil)
	if err != nil {
		t.Fatalf("another address is limited too: %v", err)
	}
	c := &client{t: t, ws: ws, name: "anna-phone"}
	c.send(map[string]any{"type": "hello", "version": 1, "token": ts.tokens["anna-phone"]})
	c.expect("welcome")
}

// TestUpgradeRetryAfterRoundsUp: Retry-After is the wait rounded up to
// whole seconds. Under a second it says 1, not 0, which would send the
// client straight back to be refused again.
func TestUpgradeRetryAfterRoundsUp(t *testing.T) {
	ts := newTestServer(t, harborView, Config{UpgradeRate: 2, UpgradeBurst: 1}) // a wait of at most 0.5 s
	for range 100 {
		ws, resp, err := dialFrom(ts, "127.0.0.1", nil)
		if err == nil {
			ws.Close()
			continue
		}
		if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("dial: %v", err)
		}
		if got := resp.Header.Get("Retry-After"); got != "1" {
			t.Fatalf("Retry-After %q for a wait under a second, want 1", got)
		}
		return
	}
	t.Fatal("100 connections from one address, at 2 a second, and none refused")
}

// TestUpgradeRateBehindProxy: X-Forwarded-For counts only from a trusted
// proxy; from anyone else the header is ignored.
func TestUpgradeRateBehindProxy(t *testing.T) {
	ts := newTestServer(t, harborView, Config{UpgradeRate: 0.5, UpgradeBurst: 1,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.5/32")}})
	hdr := func(client string) http.Header { return http.Header{"X-Forwarded-For": {client}} }
	for _, xff := range []string{"203.0.113.1", "203.0.113.2", "203.0.113.3"} {
		ws, _, err := dialFrom(ts, "127.0.0.5", hdr("198.51.100.9, "+xff))
		if err != nil {
			t.Fatalf("client %s through the trusted proxy: %v", xff, err)
		}
		ws.Close()
	}
	if _, resp, err := dialFrom(ts, "127.0.0.5", hdr("203.0.113.1")); err == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a client's second connection through the proxy: %v, want 429", err)
	}
	// An untrusted peer cannot dodge its limit with the header.
	ws, _, err := dialFrom(ts, "127.0.0.6", hdr("203.0.113.50"))
	if err != nil {
		t.Fatal(err)
	}
	ws.Close()
	if _, resp, err := dialFrom(ts, "127.0.0.6", hdr("203.0.113.51")); err == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("an untrusted peer with a fresh X-Forwarded-For: %v, want 429", err)
	}
}

// TestIPLimiterForgets: idle addresses are dropped, so a scan of many
// addresses does not grow memory without end.
func TestIPLimiterForgets(t *testing.T) {
	l := newIPLimiter(1, 1, nil)
	now := time.Now()
	for i := range 1000 {
		r := &http.Request{RemoteAddr: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}).String() + ":1234"}
		l.allow(r, now)
	}
	if n := l.size(); n != 1000 {
		t.Fatalf("%d entries, want 1000", n)
	}
	l.allow(&http.Request{RemoteAddr: "[2001:db8::1]:5"}, now.Add(2*ipIdle))
	l.allow(&http.Request{RemoteAddr: "[2001:db8::2]:5"}, now.Add(2*ipIdle))
	if n := l.size(); n != 1 {
		t.Fatalf("%d entries after the idle ones expired, want 1 (one IPv6 /64)", n)
	}
}

// TestIPLimiterKeys: which address a connection counts against behind
// trusted proxies. An IPv4 client that a proxy on a dual-stack socket
// names as ::ffff:a.b.c.d counts alone, not in one IPv6 /64 that would
// hold every IPv4 client; behind a chain of proxies, the client is the
// right-most hop of X-Forwarded-For that is not one of them, not the
// inner proxy.
func TestIPLimiterKeys(t *testing.T) {
	l := newIPLimiter(0.01, 1, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	now := time.Now()
	for _, tc := range []struct{ name, remote, xff string }{
		{"an IPv4 client named by a dual-stack proxy", "10.0.0.1:5", "::ffff:198.51.100.7"},
		{"another IPv4 client named by a dual-stack proxy", "10.0.0.1:5", "::ffff:198.51.100.8"},
		{"a client behind two proxies", "10.0.0.2:5", "203.0.113.7, 10.0.0.1"},
		{"another client behind the same two proxies", "10.0.0.2:5", "203.0.113.8, 10.0.0.1"},
	} {
		r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
		r.Header.Set("X-Forwarded-For", tc.xff)
		if ok, _ := l.allow(r, now); !ok {
			t.Errorf("%s: refused, counted with another client", tc.name)
		}
	}
}

// TestIPLimiterRetryAfterWait: a refused connection costs its address
// nothing, so that a client retrying when told to (Retry-After) is let in,
// not refused again for having asked.
func TestIPLimiterRetryAfterWait(t *testing.T) {
	l := newIPLimiter(1, 1, nil)
	r := &http.Request{RemoteAddr: "192.0.2.1:5"}
	now := time.Now()
	if ok, _ := l.allow(r, now); !ok {
		t.Fatal("the first connection was refused")
	}
	now = now.Add(300 * time.Millisecond)
	ok, wait := l.allow(r, now)
	if ok || wait <= 0 {
		t.Fatalf("a second connection within the rate: allowed %v, wait %v", ok, wait)
	}
	if ok, again := l.allow(r, now.Add(wait)); !ok {
		t.Fatalf("the retry after the %v it was told to wait was refused, told to wait %v more", wait, again)
	}
}
