package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestAccessCodes: a PIN opens the door stations it is enabled on, within
// its schedule and validity; one-time codes work once; repeated wrong codes
// lock the keypad; every attempt is in the access log.
func TestAccessCodes(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	site := op.site("Code Court")
	gateID, gateTok := e.device(op, site, map[string]string{"kind": "door_station", "name": "Gate"})
	_, backTok := e.device(op, site, map[string]string{"kind": "door_station", "name": "Back"})
	var u struct{ ID string }
	op.must(http.StatusCreated, "POST", "/v1/sites/"+site+"/users", map[string]any{"email": "c@example.com", "number": "5", "display_name": "C", "send_invitation": false}, &u)

	op.must(http.StatusCreated, "POST", "/v1/sites/"+site+"/codes", map[string]any{"user_id": u.ID, "pin": "4711", "doors": []string{gateID}}, nil)
	op.must(http.StatusCreated, "POST", "/v1/sites/"+site+"/codes", map[string]any{"user_id": u.ID, "pin": "9999", "doors": []string{gateID}, "one_time": true}, nil)
	past := time.Now().Add(-time.Hour)
	op.must(http.StatusCreated, "POST", "/v1/sites/"+site+"/codes", map[string]any{"user_id": u.ID, "pin": "1234", "doors": []string{gateID}, "valid_until": past}, nil)
	night := map[string]any{"days": []int{0, 1, 2, 3, 4, 5, 6}, "from": 0, "to": 1}
	op.must(http.StatusCreated, "POST", "/v1/sites/"+site+"/codes", map[string]any{"user_id": u.ID, "pin": "5555", "doors": []string{gateID}, "schedule": []any{night}, "time_zone": "UTC"}, nil)
	op.wantError(http.StatusConflict, "conflict", "POST", "/v1/sites/"+site+"/codes", map[string]any{"user_id": u.ID, "pin": "4711", "doors": []string{gateID}})
	op.wantError(http.StatusUnprocessableEntity, "invalid", "POST", "/v1/sites/"+site+"/codes", map[string]any{"user_id": u.ID, "pin": "12", "doors": []string{gateID}})
	if msg := op.wantError(http.StatusUnprocessableEntity, "invalid", "POST", "/v1/sites/"+site+"/codes", map[string]any{"user_id": u.ID, "pin": "8642", "doors": []string{gateID}, "valid_from": time.Now().Add(2 * time.Hour), "valid_until": time.Now().Add(time.Hour)}); !strings.Contains(msg, "valid_from") {
		t.Errorf("a code valid until before it starts: %q does not name valid_from", msg)
	}

	gate, _ := e.connect(gateTok)
	back, _ := e.connect(backTok)
	pin := func(w *ws, code string) map[string]any { return w.pin(code) }
	if m := pin(gate, "4711"); m["type"] != "unlock" {
		t.Fatalf("right code: %v, want unlock", m)
	}
	if m := pin(back, "4711"); m["code"] != "not_found" {
		t.Fatalf("code on a door it is not enabled on: %v, want not_found", m)
	}
	if m := pin(gate, "9999"); m["type"] != "unlock" {
		t.Fatalf("one-time code, first use: %v", m)
	}
	if m := pin(gate, "9999"); m["code"] != "not_found" {
		t.Fatalf("one-time code, second use: %v, want not_found", m)
	}
	if m := pin(gate, "1234"); m["code"] != "not_found" {
		t.Fatalf("expired code: %v, want not_found", m)
	}
	if h := time.Now().UTC().Hour()*60 + time.Now().UTC().Minute(); h > 0 {
		if m := pin(gate, "5555"); m["code"] != "not_found" {
			t.Fatalf("code outside its schedule: %v, want not_found", m)
		}
	}
	// Lock-out: the failures so far plus more reach the limit.
	var last map[string]any
	for range 6 {
		last = pin(gate, "0000")
	}
	if last["code"] != "rate_limited" {
		t.Fatalf("after repeated wrong codes: %v, want rate_limited", last)
	}
	if m := pin(gate, "4711"); m["code"] != "rate_limited" {
		t.Fatalf("right code while locked: %v, want rate_limited", m)
	}
	var log struct {
		Events []struct{ Outcome, User string }
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		op.must(http.StatusOK, "GET", "/v1/sites/"+site+"/logs/access", nil, &log)
		if len(log.Events) >= 12 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	granted := 0
	for _, ev := range log.Events {
		if ev.Outcome == "granted" {
			granted++
			if ev.User != u.ID {
				t.Errorf("granted entry names user %q, want %s", ev.User, u.ID)
			}
		}
	}
	if granted != 2 || len(log.Events) < 12 {
		t.Fatalf("access log: %d entries, %d granted; want ≥12 and 2", len(log.Events), granted)
	}
}
