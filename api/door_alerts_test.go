package api_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/foyer-intercom/foyer/api"
	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/email"
	"github.com/foyer-intercom/foyer/signaling"
)

// TestDoorOfflineMails: a door station connected to no node for the delay
// is reported to its site's admins by e-mail (its name, the site's, since
// when, the portal's address), once; when it connects again they are told
// it is back. A door station deleted meanwhile is reported to nobody, and
// forgotten. The alerts sweep as `foyer serve` runs them.
func TestDoorOfflineMails(t *testing.T) {
	e, alerts, connected := alertsEnv(t, 200*time.Millisecond)
	sweeping(t, alerts, connected)
	gauge := alerts.OfflineGauge()
	op, site := e.siteOwner("Gate House")
	const owner = "owner@example.com"
	_, gateTok := e.device(op, site, map[string]string{"kind": "door_station", "name": "Gate"})
	_, backTok := e.device(op, site, map[string]string{"kind": "door_station", "name": "Back door"})
	gate, _ := e.connect(gateTok)
	back, _ := e.connect(backTok)

	// The back door is deleted (which closes its connection): nobody is told.
	var devs struct{ Devices []struct{ ID, Name string } }
	op.must(http.StatusOK, "GET", "/v1/sites/"+site+"/devices", nil, &devs)
	for _, d := range devs.Devices {
		if d.Name == "Back door" {
			op.must(http.StatusNoContent, "DELETE", "/v1/sites/"+site+"/devices/"+d.ID, nil, nil)
		}
	}
	back.closed(5 * time.Second)
	backID := ""
	for _, d := range devs.Devices {
		if d.Name == "Back door" {
			backID = d.ID
		}
	}

	went := time.Now().UTC()
	_ = gate.c.Close()
	m := e.mail.waitFor(t, owner, regexp.MustCompile(`Subject: Gate at Gate House is offline`))
	body := mailText(t, m.data)
	since := regexp.MustCompile(`since (\d{4}-\d\d-\d\d \d\d:\d\d) UTC`).FindStringSubmatch(body)
	if since == nil || !strings.Contains(body, "http://foyer.test/admin") {
		t.Fatalf("the offline message:\n%s\nwant since when and the portal's address", body)
	}
	if at, err := time.Parse("2006-01-02 15:04", since[1]); err != nil || went.Sub(at) < 0 || went.Sub(at) > time.Minute {
		t.Fatalf("offline since %q, want the minute it went (%v)", since[1], went)
	}

	watchedAs(t, e, "the gate alone (the deleted back door "+backID+" forgotten)", func(seen map[directory.DeviceID]time.Time) bool { return len(seen) == 1 })
	if n := testutil.ToFloat64(gauge); n != 1 {
		t.Fatalf("foyer_door_stations_offline %v with the gate reported, want 1", n)
	}
	gateListed := func() (online bool, since string) {
		t.Helper()
		var list struct {
			Devices []struct {
				Name         string
				Online       bool
				OfflineSince *time.Time `json:"offline_since"`
			}
		}
		op.must(http.StatusOK, "GET", "/v1/sites/"+site+"/devices", nil, &list)
		for _, d := range list.Devices {
			if d.Name == "Gate" && d.OfflineSince != nil {
				return d.Online, d.OfflineSince.UTC().Format("2006-01-02 15:04")
			} else if d.Name == "Gate" {
				return d.Online, ""
			}
		}
		t.Fatal("the gate is not listed")
		return false, ""
	}
	if online, s := gateListed(); online || s != since[1] {
		t.Fatalf("the gate listed online %v, offline since %q; want offline since %s", online, s, since[1])
	}

	e.connect(gateTok)
	back2 := e.mail.waitFor(t, owner, regexp.MustCompile(`Subject: Gate at Gate House is back`))
	if body := mailText(t, back2.data); !strings.Contains(body, "It was offline from "+since[1]+" UTC") {
		t.Fatalf("the back message:\n%s\nwant since when it was offline", body)
	}
	if n := e.mail.count(owner); n != 2 {
		t.Fatalf("%d messages to the site's owner, want the gate's two (none of the deleted back door's)", n)
	}
	if n := testutil.ToFloat64(gauge); n != 0 {
		t.Fatalf("foyer_door_stations_offline %v with the gate back, want 0", n)
	}
	if online, s := gateListed(); !online || s != "" {
		t.Fatalf("the gate back listed online %v, offline since %q; want online", online, s)
	}
}

// alertsEnv is an API and hub with the door stations' alerts hooked (a
// door station gone for after is reported), and the hub's Connected for
// their sweeps.
func alertsEnv(t *testing.T, after time.Duration) (*env, *api.DoorAlerts, api.Connected) {
	var alerts *api.DoorAlerts
	var connected api.Connected
	e := newEnvFull(t, func(c *api.Config) { connected = c.Connected }, func(e *env, c *signaling.Config) {
		alerts = &api.DoorAlerts{Directory: e.dir, Accounts: e.acc, Mail: e.sender, PublicURL: "http://foyer.test", After: after, Log: e.log}
		alerts.Hook(c)
	})
	return e, alerts, connected
}

// closedHere waits until the hub has told the alerts of door station id's
// connection closing for the n-th time (it logs each close after telling
// them).
func closedHere(t *testing.T, e *env, id string, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		closes := 0
		for line := range strings.Lines(e.logs.String()) {
			if strings.Contains(line, `"msg":"disconnected"`) && strings.Contains(line, `"device_id":"`+id+`"`) {
				closes++
			}
		}
		if closes >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hub did not tell of door station %s closing, time %d", id, n)
		}
	}
}

// watchedAs waits up to 5 s for the door stations watched (the store's
// record of each) to be as want says, described by what.
func watchedAs(t *testing.T, e *env, what string, want func(map[directory.DeviceID]time.Time) bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		seen, err := e.acc.DoorsSeen(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if want(seen) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the door stations watched: %v; want %s", seen, what)
		}
	}
}

// sweeping runs alerts' sweeps until the test ends.
func sweeping(t *testing.T, alerts *api.DoorAlerts, connected api.Connected) {
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { alerts.Run(ctx, connected); close(done) }()
	t.Cleanup(func() { stop(); <-done })
}

// TestDoorOfflineSweep: each sweep looks at every door station that has
// connected, whichever node it was on. One recorded connected but connected
// nowhere (its node died) is recorded gone from that sweep and reported
// once it has been gone for the delay; when the report reaches nobody (the
// mail server refuses) the next sweep tries again. One recorded gone but
// connected (a connection that closed on one node after it opened on
// another) is recorded connected, and not reported.
func TestDoorOfflineSweep(t *testing.T) {
	const after = time.Minute
	e, alerts, connected := alertsEnv(t, after)
	ctx := context.Background()
	op, site := e.siteOwner("Mill Yard")
	const owner = "owner@example.com"
	lobbyID, lobbyTok := e.device(op, site, map[string]string{"kind": "door_station", "name": "Lobby"})
	garageID, garageTok := e.device(op, site, map[string]string{"kind": "door_station", "name": "Garage"})
	lobby, _ := e.connect(lobbyTok)
	seenIs := func(want map[string]time.Time) {
		t.Helper()
		watchedAs(t, e, fmt.Sprint(want), func(seen map[directory.DeviceID]time.Time) bool {
			same := len(seen) == len(want)
			for id, at := range want {
				got, ok := seen[directory.DeviceID(id)]
				same = same && ok && got.Equal(at)
			}
			return same
		})
	}
	seenIs(map[string]time.Time{lobbyID: {}})

	// The garage's node died while it was connected: recorded connected, and
	// connected nowhere.
	if _, _, err := e.acc.DoorConnected(ctx, directory.DeviceID(garageID)); err != nil {
		t.Fatal(err)
	}
	// The lobby's connection closed on a node after it connected to another.
	old := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	if err := e.acc.DoorGone(ctx, directory.DeviceID(lobbyID), old); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().UTC().Truncate(time.Minute)
	alerts.Sweep(ctx, t0, connected)
	seenIs(map[string]time.Time{lobbyID: {}, garageID: t0})

	alerts.Sweep(ctx, t0.Add(after-time.Second), connected)
	if n := e.mail.count(owner); n != 0 {
		t.Fatalf("%d messages before the garage was gone for %v, want none", n, after)
	}

	// The mail server refuses: nobody is told, and the report is not kept.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	refusing, err := email.NewSMTP(email.SMTPConfig{Host: "127.0.0.1", Port: closedPort, From: "foyer <noreply@foyer.test>", TLS: "none", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	down := &api.DoorAlerts{Directory: e.dir, Accounts: e.acc, Mail: refusing, After: after, Log: e.log}
	down.Sweep(ctx, t0.Add(after), connected)
	if doors, err := e.acc.DoorsOffline(ctx); err != nil || len(doors) != 0 {
		t.Fatalf("the doors offline after the report reached nobody: %v, %v; want none", doors, err)
	}

	alerts.Sweep(ctx, t0.Add(after+20*time.Second), connected)
	m := e.mail.waitFor(t, owner, regexp.MustCompile(`Subject: Garage at Mill Yard is offline`))
	if body := mailText(t, m.data); !strings.Contains(body, "since "+t0.Format("2006-01-02 15:04")+" UTC") {
		t.Fatalf("the offline message:\n%s\nwant since %v, when a sweep first found it connected nowhere", body, t0)
	}
	alerts.Sweep(ctx, t0.Add(after+40*time.Second), connected)
	if n := e.mail.count(owner); n != 1 {
		t.Fatalf("%d messages to the site's owner, want the garage's one", n)
	}
	seenIs(map[string]time.Time{lobbyID: {}, garageID: t0})

	e.connect(garageTok)
	e.mail.waitFor(t, owner, regexp.MustCompile(`Subject: Garage at Mill Yard is back`))
	seenIs(map[string]time.Time{lobbyID: {}, garageID: {}})

	// The lobby goes, is reported, and is deleted: no longer counted offline.
	_ = lobby.c.Close()
	closedHere(t, e, lobbyID, 1)
	alerts.Sweep(ctx, time.Now().Add(after), connected)
	e.mail.waitFor(t, owner, regexp.MustCompile(`Subject: Lobby at Mill Yard is offline`))
	op.must(http.StatusNoContent, "DELETE", "/v1/sites/"+site+"/devices/"+lobbyID, nil, nil)
	alerts.Sweep(ctx, time.Now().Add(after), connected)
	if doors, err := e.acc.DoorsOffline(ctx); err != nil || len(doors) != 0 {
		t.Fatalf("the doors offline once the lobby reported was deleted: %v, %v; want none", doors, err)
	}
	seenIs(map[string]time.Time{garageID: {}})
}

// TestDoorReconnectingInALoop: a door station's connection closing makes
// no store write (one reconnecting in a loop would make one each time
// round): the node keeps when it closed, and its sweep records the door
// station gone since its last close.
func TestDoorReconnectingInALoop(t *testing.T) {
	const after = time.Minute
	e, alerts, connected := alertsEnv(t, after)
	ctx := context.Background()
	op, site := e.siteOwner("Loop Lane")
	id, tok := e.device(op, site, map[string]string{"kind": "door_station", "name": "Gate"})
	door := directory.DeviceID(id)
	connectedRecorded := func(what string) {
		t.Helper()
		watchedAs(t, e, what+": the gate connected", func(seen map[directory.DeviceID]time.Time) bool {
			since, ok := seen[door]
			return ok && since.IsZero()
		})
	}
	var lastClose time.Time
	for i := range 3 {
		c, _ := e.connect(tok)
		connectedRecorded(fmt.Sprintf("connected, time %d", i+1))
		lastClose = time.Now()
		_ = c.c.Close()
		closedHere(t, e, id, i+1)
		connectedRecorded(fmt.Sprintf("closed, time %d (nothing written)", i+1))
	}

	// A sweep half a minute on records it gone since its last close, not
	// since the sweep.
	alerts.Sweep(ctx, time.Now().Add(after/2), connected)
	seen, err := e.acc.DoorsSeen(ctx)
	if since := seen[door]; err != nil || since.Before(lastClose) || since.After(time.Now()) {
		t.Fatalf("after a sweep the gate is watched as %v (%v), want gone since its last close (after %v)", seen, err, lastClose)
	}
}
