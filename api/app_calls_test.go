package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// personCall is a call of GET /v1/app/calls.
type personCall struct {
	CallID         string `json:"call_id"`
	Site           string `json:"site_id"`
	SiteName       string `json:"site_name"`
	Door           string `json:"door_station_id"`
	DoorName       string `json:"door_name"`
	To             string
	Time           time.Time
	Result         string
	Reason         string
	AnsweredBy     string `json:"answered_by"`
	AnsweredByName string `json:"answered_by_name"`
	DoorOpened     bool   `json:"door_opened"`
}

// appCalls reads a person's call history once it holds n calls (the log
// is written behind the calls).
func appCalls(t *testing.T, app *client, query string, n int) []personCall {
	t.Helper()
	var got struct{ Calls []personCall }
	deadline := time.Now().Add(5 * time.Second)
	for {
		got.Calls = nil
		app.must(http.StatusOK, "GET", "/v1/app/calls"+query, nil, &got)
		if len(got.Calls) >= n || time.Now().After(deadline) {
			return got.Calls
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAppCallHistory: a person's app lists the calls that were for them,
// on every site of theirs, newest first, each as it ended for them: their
// phone answered (and which), someone else's did (not a missed call),
// someone else declined it for everyone, the visitor gave up, or nobody
// was connected; and while their devices were all offline a call answered
// by a neighbour is still in their history, as answered elsewhere. A
// person another call ID is for sees none of it. Pages by limit and
// before; bad parameters are refused; leaving a site takes its calls out.
func TestAppCallHistory(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	site := op.site("History Court")
	other := op.site("Other Court")
	_, annaTok := e.resident(op, site, "anna@example.com", "5")
	_, bramTok := e.resident(op, site, "bram@example.com", "5")
	e.resident(op, site, "carla@example.com", "6")
	op.must(http.StatusCreated, "POST", "/v1/sites/"+other+"/users", map[string]string{"email": "anna@example.com", "number": "22", "display_name": "Anna"}, nil)
	doorID, doorTok := e.device(op, site, map[string]string{"kind": "door_station", "name": "Gate"})
	_, otherDoorTok := e.device(op, other, map[string]string{"kind": "door_station", "name": "Other gate"})
	anna, bram, carla := e.residentApp("anna@example.com"), e.residentApp("bram@example.com"), e.residentApp("carla@example.com")
	anna.must(http.StatusCreated, "POST", "/v1/app/devices", map[string]string{"name": "tablet"}, nil) // never connected
	var me struct{ Devices []struct{ ID, Name string } }
	anna.must(http.StatusOK, "GET", "/v1/app/me", nil, &me)
	var annaPhone string
	for _, d := range me.Devices {
		if d.Name == "phone" {
			annaPhone = d.ID
		}
	}

	door, _ := e.connect(doorTok)
	otherDoor, _ := e.connect(otherDoorTok)
	annaWS, _ := e.connect(annaTok)
	bramWS, _ := e.connect(bramTok)
	ring := func(d *ws, to string, rung ...*ws) string {
		t.Helper()
		d.send(map[string]any{"type": "call", "to": to})
		id, _ := d.next("calling")["call_id"].(string)
		for _, w := range rung {
			w.next("ring")
		}
		return id
	}

	// 1: Anna's phone answers, opens the door, hangs up.
	c1 := ring(door, "5", annaWS, bramWS)
	annaWS.send(map[string]any{"type": "answer", "call_id": c1})
	annaWS.next("answered")
	bramWS.next("cancel")
	annaWS.send(map[string]any{"type": "open_door", "call_id": c1, "relay": 1})
	annaWS.next("door_opened")
	annaWS.send(map[string]any{"type": "hangup", "call_id": c1})
	annaWS.next("ended")
	door.next("answered")
	door.next("unlock")
	door.next("ended")
	// 2: Bram declines for everyone.
	c2 := ring(door, "5", annaWS, bramWS)
	bramWS.send(map[string]any{"type": "decline", "call_id": c2, "scope": "everyone"})
	annaWS.next("cancel")
	door.next("ended")
	// 3: the visitor gives up.
	c3 := ring(door, "5", annaWS, bramWS)
	door.send(map[string]any{"type": "hangup", "call_id": c3})
	door.next("ended")
	annaWS.next("cancel")
	bramWS.next("cancel")
	// 4: at the other site, nobody answers Anna's number; the visitor gives up.
	c4 := ring(otherDoor, "22", annaWS)
	otherDoor.send(map[string]any{"type": "hangup", "call_id": c4})
	otherDoor.next("ended")
	annaWS.next("cancel")
	// 5: Anna's phone is off; Bram answers.
	_ = annaWS.c.Close()
	time.Sleep(100 * time.Millisecond) // the server sees the close before the call
	c5 := ring(door, "5", bramWS)
	bramWS.send(map[string]any{"type": "answer", "call_id": c5})
	bramWS.next("answered")
	door.next("answered")
	bramWS.send(map[string]any{"type": "hangup", "call_id": c5})
	door.next("ended")
	bramWS.next("ended")
	// 6: nobody's device is connected.
	_ = bramWS.c.Close()
	time.Sleep(100 * time.Millisecond)
	door.send(map[string]any{"type": "call", "to": "5"})
	c6, _ := door.next("ended")["call_id"].(string)

	type want struct{ call, result, reason, site string }
	check := func(who string, got []personCall, ws ...want) {
		t.Helper()
		ok := len(got) == len(ws)
		for i := 0; ok && i < len(ws); i++ {
			ok = got[i].CallID == ws[i].call && got[i].Result == ws[i].result && got[i].Reason == ws[i].reason && got[i].Site == ws[i].site
		}
		if !ok {
			t.Fatalf("%s's calls:\n%+v\nwant (call, result, reason, site):\n%+v", who, got, ws)
		}
	}
	annaAll := appCalls(t, anna, "", 6)
	check("anna", annaAll,
		want{c6, "missed", "unavailable", site}, want{c5, "answered_elsewhere", "hangup", site}, want{c4, "missed", "hangup", other},
		want{c3, "missed", "hangup", site}, want{c2, "declined_elsewhere", "declined", site}, want{c1, "answered", "hangup", site})
	if c := annaAll[5]; c.AnsweredBy != annaPhone || c.AnsweredByName != "phone" || !c.DoorOpened || c.Door != doorID ||
		c.DoorName != "Gate" || c.SiteName != "History Court" || c.To != "5" {
		t.Fatalf("anna's answered call %+v: want answered by her phone %s at History Court's Gate %s, door opened", c, annaPhone, doorID)
	}
	if c := annaAll[1]; c.AnsweredBy != "" || c.AnsweredByName != "" {
		t.Fatalf("a call Bram answered names %q (%s) in Anna's history", c.AnsweredBy, c.AnsweredByName)
	}
	check("bram", appCalls(t, bram, "", 5),
		want{c6, "missed", "unavailable", site}, want{c5, "answered", "hangup", site},
		want{c3, "missed", "hangup", site}, want{c2, "declined", "declined", site}, want{c1, "answered_elsewhere", "hangup", site})
	if _, body := carla.do("GET", "/v1/app/calls", nil); !strings.Contains(string(body), `"calls":[]`) {
		t.Fatalf("carla, whose call ID rang for none of them: %s, want no calls", body)
	}

	// Pages: the newest two, then the two before the second.
	check("anna, 2", appCalls(t, anna, "?limit=2", 2), want{c6, "missed", "unavailable", site}, want{c5, "answered_elsewhere", "hangup", site})
	before := annaAll[1].Time.Format(time.RFC3339Nano)
	check("anna, 2 before c5", appCalls(t, anna, "?limit=2&before="+before, 2),
		want{c4, "missed", "hangup", other}, want{c3, "missed", "hangup", site})
	for _, q := range []string{"?limit=0", "?limit=501", "?limit=ten", "?before=yesterday"} {
		if msg := anna.wantError(http.StatusBadRequest, "bad_request", "GET", "/v1/app/calls"+q, nil); msg == "" {
			t.Fatalf("%s: no message", q)
		}
	}
	e.anon().wantError(http.StatusUnauthorized, "unauthenticated", "GET", "/v1/app/calls", nil)

	// The site's call log, filtered by a person, lists the calls that were
	// for them, whoever answered.
	var annaID, carlaID struct{ User struct{ ID string } }
	anna.must(http.StatusOK, "GET", "/v1/app/me", nil, &annaID)
	carla.must(http.StatusOK, "GET", "/v1/app/me", nil, &carlaID)
	for who, want := range map[string][]string{annaID.User.ID: {c6, c5, c3, c2, c1}, carlaID.User.ID: nil} {
		var log struct {
			Events []struct {
				CallID string `json:"call_id"`
				People []string
			}
		}
		op.must(http.StatusOK, "GET", "/v1/sites/"+site+"/logs/call?user="+who, nil, &log)
		var got []string
		for _, ev := range log.Events {
			got = append(got, ev.CallID)
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("History Court's call log for %s: %v, want %v", who, got, want)
		}
		if len(log.Events) > 0 && (len(log.Events[0].People) != 2) {
			t.Fatalf("call log entry %+v: want Anna and Bram as its people", log.Events[0])
		}
	}

	// Anna leaves the other site: its call goes from her history, the rest stay.
	op.must(http.StatusNoContent, "DELETE", "/v1/sites/"+other+"/users/"+annaID.User.ID, nil, nil)
	check("anna after leaving Other Court", appCalls(t, anna, "", 5),
		want{c6, "missed", "unavailable", site}, want{c5, "answered_elsewhere", "hangup", site},
		want{c3, "missed", "hangup", site}, want{c2, "declined_elsewhere", "declined", site}, want{c1, "answered", "hangup", site})
}
