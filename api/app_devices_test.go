package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/foyer-intercom/foyer/directory"
)

// TestAppRemoveDevice: a person sees which of their app installs are
// online, and removes one (a lost phone): its connection closes with 4010,
// its token is refused from then on (4001), its push token goes, and it no
// longer counts towards the limit of 10, which then lets another be
// registered. Another person's device, a door station and a device that
// does not exist are not found, and nothing of theirs changes.
func TestAppRemoveDevice(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	site := op.site("Lost Phones")
	_, phoneTok := e.resident(op, site, "lost@example.com", "5")
	_, otherTok := e.resident(op, site, "other@example.com", "6")
	doorID, _ := e.device(op, site, map[string]string{"kind": "door_station", "name": "Gate"})
	app := e.residentApp("lost@example.com")
	var tablet struct{ Device struct{ ID string } }
	app.must(http.StatusCreated, "POST", "/v1/app/devices", map[string]string{"name": "tablet", "push_token": "push-tablet"}, &tablet)
	devices := func(c *client) map[string]string {
		t.Helper()
		var me struct{ Devices []struct{ ID, Name string } }
		c.must(http.StatusOK, "GET", "/v1/app/me", nil, &me)
		byName := make(map[string]string)
		for _, d := range me.Devices {
			byName[d.Name] = d.ID
		}
		return byName
	}
	phoneID := devices(app)["phone"]
	other := e.residentApp("other@example.com")
	otherID := devices(other)["phone"]

	phone, _ := e.connect(phoneTok)
	otherPhone, _ := e.connect(otherTok)
	var me struct {
		Devices []struct {
			Name   string
			Online *bool
		}
	}
	app.must(http.StatusOK, "GET", "/v1/app/me", nil, &me)
	for _, d := range me.Devices {
		if d.Online == nil || *d.Online != (d.Name == "phone") {
			t.Errorf("/v1/app/me lists %s online %v; want the connected phone alone online", d.Name, d.Online)
		}
	}
	for _, id := range []string{otherID, doorID, "d_nosuchdevice"} {
		app.wantError(http.StatusNotFound, "not_found", "DELETE", "/v1/app/devices/"+id, nil)
	}
	app.must(http.StatusNoContent, "DELETE", "/v1/app/devices/"+phoneID, nil, nil)
	if code := phone.closed(5 * time.Second); code != 4010 {
		t.Fatalf("the removed phone's connection closed with %d, want 4010", code)
	}
	if code := helloRefused(t, e, phoneTok); code != 4001 {
		t.Fatalf("the removed phone's token: closed with %d, want 4001", code)
	}
	app.wantError(http.StatusNotFound, "not_found", "DELETE", "/v1/app/devices/"+phoneID, nil)
	if got := devices(app); len(got) != 1 || got["tablet"] == "" {
		t.Fatalf("devices after removing the phone: %v, want the tablet alone", got)
	}
	if got := devices(other); len(got) != 1 || got["phone"] != otherID {
		t.Fatalf("the other person's devices: %v", got)
	}
	otherPhone.send(map[string]any{"type": "ping"})
	otherPhone.next("pong") // still connected

	ctx := context.Background()
	if tok, err := e.acc.PushToken(ctx, directory.DeviceID(tablet.Device.ID)); err != nil || tok != "push-tablet" {
		t.Fatalf("the tablet's push token: %q, %v", tok, err)
	}
	app.must(http.StatusNoContent, "DELETE", "/v1/app/devices/"+tablet.Device.ID, nil, nil)
	if tok, err := e.acc.PushToken(ctx, directory.DeviceID(tablet.Device.ID)); err != nil || tok != "" {
		t.Fatalf("the removed tablet's push token: %q, %v; want it gone", tok, err)
	}

	// Up to the limit, then one removed makes room for another.
	for i := range 10 {
		app.must(http.StatusCreated, "POST", "/v1/app/devices", map[string]string{"name": fmt.Sprintf("install %d", i)}, nil)
	}
	app.wantError(http.StatusConflict, "limit", "POST", "/v1/app/devices", map[string]string{"name": "one more"})
	app.must(http.StatusNoContent, "DELETE", "/v1/app/devices/"+devices(app)["install 3"], nil, nil)
	app.must(http.StatusCreated, "POST", "/v1/app/devices", map[string]string{"name": "one more"}, nil)
}

// TestRemovedUsersPushTokensGo: a person deleted from their last site
// loses their app devices, and with them their push tokens.
func TestRemovedUsersPushTokensGo(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	site := op.site("Moving Out")
	userID, _ := e.resident(op, site, "leaving@example.com", "7")
	var tablet struct{ Device struct{ ID string } }
	e.residentApp("leaving@example.com").must(http.StatusCreated, "POST", "/v1/app/devices", map[string]string{"name": "tablet", "push_token": "push-leaving"}, &tablet)
	op.must(http.StatusNoContent, "DELETE", "/v1/sites/"+site+"/users/"+userID, nil, nil)
	if tok, err := e.acc.PushToken(context.Background(), directory.DeviceID(tablet.Device.ID)); err != nil || tok != "" {
		t.Fatalf("a deleted person's push token: %q, %v; want it gone", tok, err)
	}
}

// helloRefused says hello with token and returns the close code the server
// answers with.
func helloRefused(t *testing.T, e *env, token string) int {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.srv.URL, "http")+"/v1/signal", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w := &ws{t: t, c: c}
	w.send(map[string]any{"type": "hello", "token": token, "version": 1})
	return w.closed(5 * time.Second)
}
