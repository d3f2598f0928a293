package api_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/foyer-intercom/foyer/api"
	"github.com/foyer-intercom/foyer/signaling"
)

// TestDoorOfflineMails: a door station connected to no node for the delay
// is reported to its site's admins by e-mail (its name, the site's, since
// when, the portal's address), once; when it connects again they are told
// it is back. A door station deleted meanwhile is reported to nobody.
func TestDoorOfflineMails(t *testing.T) {
	var gauge prometheus.Collector
	e := newEnvFull(t, nil, func(e *env, c *signaling.Config) {
		c.DoorOffline = 200 * time.Millisecond
		alerts := api.DoorAlerts{Directory: e.dir, Accounts: e.acc, Mail: e.sender, PublicURL: "http://foyer.test", Log: e.log}
		alerts.Hook(c)
		gauge = alerts.OfflineGauge()
	})
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
