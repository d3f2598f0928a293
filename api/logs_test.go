package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestLogs: a call lands in the call log (who rang, who was rung, who
// answered, how it ended, the door opened) and the door log; CSV export;
// after the site's retention the personal data is purged.
func TestLogs(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	site := op.site("Log Court")
	op.must(http.StatusOK, "PUT", "/v1/sites/"+site+"/entries/3", map[string]string{"name": "Three"}, nil)
	doorID, doorTok := e.device(op, site, map[string]string{"kind": "door_station", "name": "Gate"})
	monID, monTok := e.device(op, site, map[string]string{"kind": "monitor", "name": "Hall 3", "number": "3"})
	door, _ := e.connect(doorTok)
	mon, _ := e.connect(monTok)

	door.send(map[string]any{"type": "call", "to": "3"})
	id, _ := door.next("calling")["call_id"].(string)
	mon.next("ring")
	var live struct {
		Calls []struct {
			CallID     string `json:"call_id"`
			Node       string
			State      string
			Ringing    int
			AnsweredBy string `json:"answered_by"`
		}
		Unanswered []string `json:"unanswered_nodes"`
	}
	op.must(http.StatusOK, "GET", "/v1/sites/"+site+"/calls", nil, &live)
	if len(live.Calls) != 1 || live.Calls[0].CallID != id || live.Calls[0].State != "ringing" || live.Calls[0].Ringing != 1 ||
		live.Calls[0].Node == "" || live.Unanswered != nil {
		t.Fatalf("live calls while ringing: %+v", live)
	}
	mon.send(map[string]any{"type": "answer", "call_id": id})
	mon.next("answered")
	op.must(http.StatusOK, "GET", "/v1/sites/"+site+"/calls", nil, &live)
	if len(live.Calls) != 1 || live.Calls[0].State != "answered" || live.Calls[0].AnsweredBy != monID {
		t.Fatalf("live calls once answered: %+v", live.Calls)
	}
	mon.send(map[string]any{"type": "open_door", "call_id": id, "relay": 1})
	mon.next("door_opened")
	mon.send(map[string]any{"type": "hangup", "call_id": id})
	door.next("answered")
	door.next("unlock")
	door.next("ended")
	live.Calls = nil
	op.must(http.StatusOK, "GET", "/v1/sites/"+site+"/calls", nil, &live)
	if len(live.Calls) != 0 {
		t.Fatalf("live calls after the end: %+v", live.Calls)
	}

	type event struct {
		CallID     string `json:"call_id"`
		Door       string
		Devices    []string
		Answered   string
		Outcome    string
		DoorOpened bool `json:"door_opened"`
		Actor      string
		Purged     bool
	}
	var calls struct{ Events []event }
	deadline := time.Now().Add(5 * time.Second)
	for len(calls.Events) == 0 && time.Now().Before(deadline) {
		op.must(http.StatusOK, "GET", "/v1/sites/"+site+"/logs/call", nil, &calls)
	}
	if len(calls.Events) != 1 {
		t.Fatalf("call log: %+v, want one entry", calls.Events)
	}
	c := calls.Events[0]
	if c.CallID != id || c.Door != doorID || c.Answered != monID || c.Outcome != "hangup" || !c.DoorOpened || len(c.Devices) != 1 {
		t.Fatalf("call entry %+v: want call %v from %s answered by %s, hangup, door opened", c, id, doorID, monID)
	}
	var doors struct{ Events []event }
	op.must(http.StatusOK, "GET", "/v1/sites/"+site+"/logs/door?device="+monID, nil, &doors)
	if len(doors.Events) != 1 || doors.Events[0].Actor != monID {
		t.Fatalf("door log filtered by the monitor: %+v", doors.Events)
	}
	op.must(http.StatusOK, "GET", "/v1/sites/"+site+"/logs/door?device=d_other", nil, &doors)
	if len(doors.Events) != 0 {
		t.Fatalf("door log filtered by another device: %+v", doors.Events)
	}
	op.must(http.StatusOK, "GET", "/v1/sites/"+site+"/logs/call?to=2000-01-01", nil, &calls)
	if len(calls.Events) != 0 {
		t.Fatalf("call log before 2000: %+v", calls.Events)
	}
	_, csv := op.do("GET", "/v1/sites/"+site+"/logs/call?format=csv", nil)
	if lines := strings.Split(strings.TrimSpace(string(csv)), "\n"); len(lines) != 2 || !strings.Contains(lines[1], monID) {
		t.Fatalf("call log CSV: %s", csv)
	}
	var audit struct{ Events []event }
	op.must(http.StatusOK, "GET", "/v1/sites/"+site+"/logs/audit", nil, &audit)
	if len(audit.Events) < 3 || audit.Events[len(audit.Events)-1].Actor != operatorEmail {
		t.Fatalf("audit log: %+v, want the site's creation and changes by %s", audit.Events, operatorEmail)
	}

	// Past the retention (90 days by default) personal data goes.
	e.now.advance(91 * 24 * time.Hour)
	if err := e.acc.MaintainOnce(context.Background(), e.dir); err != nil {
		t.Fatal(err)
	}
	op = e.operator()
	calls.Events, audit.Events = nil, nil // decode afresh: json reuses slice elements
	op.must(http.StatusOK, "GET", "/v1/sites/"+site+"/logs/call", nil, &calls)
	if c := calls.Events[0]; !c.Purged || c.Answered != "" || len(c.Devices) != 0 || c.Outcome != "hangup" {
		t.Fatalf("after retention: %+v, want purged personal data and the outcome kept", c)
	}
	op.must(http.StatusOK, "GET", "/v1/sites/"+site+"/logs/audit", nil, &audit)
	for _, a := range audit.Events {
		if !a.Purged || a.Actor != "" {
			t.Fatalf("audit entry after retention: %+v, want purged", a)
		}
	}
}

// TestAuditEntries: every admin change docs/api.md lists writes its entry
// in the site's audit log, naming who made it.
func TestAuditEntries(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	site := op.site("Audit Court")
	at := "/v1/sites/" + site
	if _, err := e.acc.CreateAdmin(context.Background(), "next@example.com", "a password of theirs", false); err != nil {
		t.Fatal(err)
	}
	var u struct{ ID string }
	var key struct {
		APIKey struct{ ID string } `json:"api_key"`
	}
	var door provisioned
	var code struct{ ID string }
	for _, c := range []struct {
		action string
		change func()
	}{
		{"site.update", func() { op.must(http.StatusOK, "PATCH", at, map[string]string{"name": "Audit Court"}, nil) }},
		{"admin.invite", func() {
			op.must(http.StatusCreated, "PUT", at+"/admins", map[string]string{"email": "new@example.com", "role": "viewer"}, nil)
		}},
		{"site.role", func() {
			op.must(http.StatusNoContent, "PUT", at+"/admins", map[string]string{"email": "next@example.com", "role": "viewer"}, nil)
		}},
		{"site.transfer", func() {
			op.must(http.StatusNoContent, "POST", at+"/transfer", map[string]string{"email": "next@example.com"}, nil)
		}},
		{"api_key.create", func() {
			op.must(http.StatusCreated, "POST", at+"/api-keys", map[string]string{"name": "k", "role": "viewer"}, &key)
		}},
		{"api_key.delete", func() { op.must(http.StatusNoContent, "DELETE", at+"/api-keys/"+key.APIKey.ID, nil, nil) }},
		{"entry.put", func() { op.must(http.StatusOK, "PUT", at+"/entries/9", map[string]string{"name": "Nine"}, nil) }},
		{"entry.delete", func() { op.must(http.StatusNoContent, "DELETE", at+"/entries/9", nil, nil) }},
		{"user.add", func() {
			op.must(http.StatusCreated, "POST", at+"/users", map[string]any{"email": "u@example.com", "number": "1", "display_name": "U", "send_invitation": false}, &u)
		}},
		{"user.update", func() {
			op.must(http.StatusOK, "PATCH", at+"/users/"+u.ID, map[string]string{"display_name": "V"}, nil)
		}},
		{"user.invite", func() { op.must(http.StatusOK, "POST", at+"/users/"+u.ID+"/invitation", nil, nil) }},
		{"user.import", func() {
			op.must(http.StatusOK, "POST", at+"/users/import", "email,call_id,display_name\ni@example.com,2,I\n", nil)
		}},
		{"device.create", func() {
			op.must(http.StatusCreated, "POST", at+"/devices", map[string]string{"kind": "door_station", "name": "Gate"}, &door)
		}},
		{"device.update", func() {
			op.must(http.StatusOK, "PATCH", at+"/devices/"+door.Device.ID, map[string]string{"name": "Main gate"}, nil)
		}},
		{"device.provisioning", func() {
			op.must(http.StatusCreated, "POST", at+"/devices/"+door.Device.ID+"/provisioning", nil, nil)
		}},
		{"code.create", func() {
			op.must(http.StatusCreated, "POST", at+"/codes", map[string]any{"user_id": u.ID, "pin": "4711", "doors": []string{door.Device.ID}}, &code)
		}},
		{"code.delete", func() { op.must(http.StatusNoContent, "DELETE", at+"/codes/"+code.ID, nil, nil) }},
		{"device.revoke", func() { op.must(http.StatusNoContent, "DELETE", at+"/devices/"+door.Device.ID, nil, nil) }},
		{"user.delete", func() { op.must(http.StatusNoContent, "DELETE", at+"/users/"+u.ID, nil, nil) }},
	} {
		t.Run(c.action, func(t *testing.T) {
			if op.auditHas(site, c.action, operatorEmail) {
				t.Fatalf("%s is in the audit log before the change", c.action)
			}
			c.change()
			if !op.auditHas(site, c.action, operatorEmail) {
				t.Errorf("no %s entry by %s in the audit log", c.action, operatorEmail)
			}
		})
	}
}
