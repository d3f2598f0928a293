package web_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/foyer-intercom/foyer/accounts"
	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/redistest"
	"github.com/foyer-intercom/foyer/signaling"
)

// TestPortalLiveCallsOfEveryNode: the Live calls tab of a portal served by
// one node of a cluster lists a call owned by another node (its door
// station is connected there), and names a node that is heard from but
// does not answer, whose calls it cannot show. The Devices tab shows that
// door station online, and offline once it has gone.
func TestPortalLiveCallsOfEveryNode(t *testing.T) {
	var hubs []*signaling.Hub // node-a's serves the portal
	node := newPortalOf(t, func() *signaling.Hub { return hubs[0] })
	ctx := context.Background()
	file, err := directory.ParseProvision([]byte(site))
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := directory.Provision(ctx, node.store, file)
	if err != nil {
		t.Fatal(err)
	}
	sites, err := node.store.Sites(ctx)
	if err != nil || len(sites) != 1 {
		t.Fatalf("sites %v, %v", sites, err)
	}
	adm, err := node.acc.CreateAdmin(ctx, "manager@example.com", "portal password 1", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := node.acc.SetRole(ctx, sites[0].ID, adm.ID, accounts.RoleViewer); err != nil {
		t.Fatal(err)
	}

	// Two nodes on one Redis, sharing the portal's directory.
	addr := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	run, stop := context.WithCancel(ctx)
	t.Cleanup(stop)
	var urls []string
	for _, id := range []string{"node-a", "node-b"} {
		client := redis.NewClient(&redis.Options{Addr: addr})
		router, err := signaling.NewRedisRouter(id, client, signaling.RedisRouterOptions{}, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		hub, err := signaling.NewHub(signaling.Config{NodeID: id}, node.store, router, nil, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { hub.Run(run); close(done) }()
		srv := httptest.NewServer(hub)
		t.Cleanup(func() {
			drain, now := context.WithTimeout(ctx, 0)
			hub.Drain(drain)
			now()
			srv.Close()
			stop()
			<-done
			_ = client.Close()
		})
		for start := time.Now(); router.Ready(ctx) != nil; time.Sleep(5 * time.Millisecond) {
			if time.Since(start) > 10*time.Second {
				t.Fatalf("%s never became ready", id)
			}
		}
		hubs = append(hubs, hub)
		urls = append(urls, "ws"+strings.TrimPrefix(srv.URL, "http")+"/v1/signal")
	}
	phone := deviceOn(t, urls[0], tokens["anna-phone"])
	door := deviceOn(t, urls[1], tokens["front-door"])
	send(t, door, map[string]any{"type": "call", "to": "101"})
	expectOn(t, door, "calling")
	expectOn(t, phone, "ring")

	browser := chromium(t)
	c := &call{t: t}
	p := c.open(browser, "admin", node.srv.URL+"/admin")
	c.signInToPortal(p, "manager@example.com", "portal password 1")
	c.waitFor(p, "signed in", seen(`shown("app")`))
	c.click(p, `button[data-tab="live"]`)
	const row = `[...document.querySelectorAll("#live tbody tr")].some(tr => tr.children[1].textContent === "front-door" &&
		tr.children[2].textContent === "101" && tr.children[3].textContent === "ringing" && tr.children[4].textContent === "1")`
	c.waitFor(p, "node-b's call listed by node-a's portal, no server named", seen(row+` && !shown("live-unanswered")`))

	// A node heard from (its heartbeats, its alive key: the router's keys
	// and channels, docs/operations.md) and subscribed, that never answers.
	if err := rdb.Set(ctx, "foyer:alive:ghost", "1", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	sub := rdb.SSubscribe(ctx, "foyer:node:ghost")
	t.Cleanup(func() { _ = sub.Close() })
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	beat, stopBeat := context.WithCancel(ctx)
	defer stopBeat()
	go func() {
		for n := 1; beat.Err() == nil; n++ {
			rdb.SPublish(beat, "foyer:presence-events", "h ghost "+strconv.Itoa(n))
			time.Sleep(200 * time.Millisecond)
		}
	}()
	c.waitFor(p, "the silent node named, node-b's call still listed",
		seen(row+` && shown("live-unanswered") && document.getElementById("live-unanswered").textContent ===
			"Server ghost did not answer in time: their calls are not shown."`))

	status := func(want string) string {
		return `[...document.querySelectorAll("#devices tbody tr")].some(tr => tr.children[1].textContent === "front-door" &&
			tr.children[4].textContent === "` + want + `")`
	}
	c.click(p, `button[data-tab="devices"]`)
	c.waitFor(p, "front-door, connected to node-b, online", status("Online"))
	_ = door.Close()
	for deadline := time.Now().Add(browserWait); ; {
		c.click(p, `button[data-tab="devices"]`) // each click reads the list again
		if ok, err := eval[bool](p, status("Offline")); err == nil && ok {
			break
		}
		if time.Now().After(deadline) {
			c.fail("admin page: front-door still not offline %v after it closed", browserWait)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Reported offline to the site's admins (as after signaling.door_offline_after), it says since when.
	gate, err := node.store.DeviceByName(ctx, directory.KindDoorStation, string(sites[0].ID), "front-door")
	if err != nil {
		t.Fatal(err)
	}
	went := time.Date(2026, 12, 7, 21, 30, 0, 0, time.Local)
	if err := node.acc.DoorGone(ctx, gate.ID, went); err != nil {
		t.Fatal(err)
	}
	if first, err := node.acc.MarkDoorOffline(ctx, gate.ID, went); err != nil || !first {
		t.Fatalf("marking the gate offline: %v, %v", first, err)
	}
	c.click(p, `button[data-tab="devices"]`)
	c.waitFor(p, "front-door offline since the time reported", status("Offline since Dec 7, 2026, 9:30 PM"))
}

// deviceOn connects a device with token to the signalling endpoint url.
func deviceOn(t *testing.T, url, token string) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	if err := ws.WriteJSON(map[string]any{"type": "hello", "token": token, "version": 1}); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := ws.ReadJSON(&m); err != nil || m["type"] != "welcome" {
		t.Fatalf("hello: %v, %v", m, err)
	}
	return ws
}
