package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestBadInput: wrong types, missing fields, unknown fields, oversized
// bodies, wrong content types and unknown objects get clear errors and
// change nothing.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	site := op.site("Bad Input Court")
	users := "/v1/sites/" + site + "/users"
	cases := []struct {
		name   string
		method string
		path   string
		body   any
		status int
		code   string
		says   string
	}{
		{"number as a JSON number", "POST", users, []byte(`{"email":"a@example.com","number":101,"display_name":"A"}`), 400, "bad_request", `"number"`},
		{"missing display name", "POST", users, map[string]string{"email": "a@example.com", "number": "1"}, 400, "bad_request", "display_name"},
		{"unknown field", "POST", users, map[string]string{"email": "a@example.com", "number": "1", "display_name": "A", "colour": "red"}, 400, "bad_request", "colour"},
		{"malformed JSON", "POST", users, []byte(`{"email":`), 400, "bad_request", "JSON"},
		{"trailing data", "POST", users, []byte(`{"email":"a@example.com","number":"1","display_name":"A"}{}`), 400, "bad_request", "after"},
		{"empty body", "POST", users, []byte(``), 400, "bad_request", "empty"},
		{"oversized body", "POST", users, []byte(`{"email":"` + strings.Repeat("a", 70<<10) + `"}`), 413, "too_large", "bytes"},
		{"CSV sent as JSON", "POST", users, "email,call_id\n", 415, "unsupported_media_type", "application/json"},
		{"transfer without an e-mail", "POST", "/v1/sites/" + site + "/transfer", map[string]string{}, 400, "bad_request", "email"},
		{"JSON sent to the CSV import", "POST", users + "/import", []byte(`{"email":"a@example.com"}`), 415, "unsupported_media_type", "text/csv"},
		{"bad e-mail", "POST", users, map[string]string{"email": "nope", "number": "1", "display_name": "A"}, 422, "invalid", "e-mail"},
		{"bad number", "POST", users, map[string]string{"email": "a@example.com", "number": "12345678", "display_name": "A"}, 422, "invalid", "digits"},
		{"21 tags", "POST", users, map[string]any{"email": "a@example.com", "number": "1", "display_name": "A", "tags": strings.Split("a b c d e f g h i j k l m n o p q r s t u", " ")}, 422, "invalid", "20 tags"},
		{"tag with a comma", "POST", users, map[string]any{"email": "a@example.com", "number": "1", "display_name": "A", "tags": []string{"a,b"}}, 422, "invalid", "tag"},
		{"bad licence", "POST", users, map[string]string{"email": "a@example.com", "number": "1", "display_name": "A", "licence": "maybe"}, 422, "invalid", "licence"},
		{"unknown site", "POST", "/v1/sites/s_nothing/users", map[string]string{"email": "a@example.com", "number": "1", "display_name": "A"}, 404, "not_found", "site"},
		{"unknown user", "GET", users + "/u_nobody", nil, 404, "not_found", "u_nobody"},
		{"unknown endpoint", "GET", "/v1/nothing", nil, 404, "not_found", "endpoint"},
		{"settings out of range", "PATCH", "/v1/sites/" + site, map[string]any{"settings": map[string]int{"ring_timeout_s": 5}}, 422, "invalid", "ring_timeout_s must be 10 to 180"},
		{"settings that overflow a duration", "PATCH", "/v1/sites/" + site, []byte(`{"settings":{"ring_timeout_s":18446744084}}`), 422, "invalid", "ring_timeout_s"},
		{"log retention of no days", "PATCH", "/v1/sites/" + site, map[string]any{"settings": map[string]int{"log_retention_days": 0}}, 422, "invalid", "log_retention_days must be 1 to 3650"},
		{"monitor for a number the site lacks", "POST", "/v1/sites/" + site + "/devices", map[string]string{"kind": "monitor", "name": "M", "number": "99"}, 422, "invalid", "number"},
		{"settings wrong type", "PATCH", "/v1/sites/" + site, []byte(`{"settings":{"preview":"yes"}}`), 400, "bad_request", "preview"},
		{"device of no kind", "POST", "/v1/sites/" + site + "/devices", map[string]string{"kind": "toaster", "name": "T"}, 400, "bad_request", "kind"},
		{"monitor without number", "POST", "/v1/sites/" + site + "/devices", map[string]string{"kind": "monitor", "name": "M"}, 400, "bad_request", "number"},
		{"bad pin", "POST", "/v1/sites/" + site + "/codes", map[string]any{"user_id": "u_x", "pin": "12"}, 404, "not_found", "u_x"},
		{"unknown log", "GET", "/v1/sites/" + site + "/logs/gossip", nil, 404, "not_found", "gossip"},
		{"bad date", "GET", "/v1/sites/" + site + "/logs/call?from=yesterday", nil, 400, "bad_request", "from"},
		{"log limit of none", "GET", "/v1/sites/" + site + "/logs/call?limit=0", nil, 400, "bad_request", "limit: a positive number"},
		{"no session", "GET", "/v1/sites", nil, 401, "unauthenticated", "sign in"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl := op
			if c.code == "unauthenticated" {
				cl = e.anon()
			}
			msg := cl.wantError(c.status, c.code, c.method, c.path, c.body)
			if !strings.Contains(msg, c.says) {
				t.Errorf("message %q does not mention %q", msg, c.says)
			}
		})
	}
	var list struct{ Total int }
	op.must(http.StatusOK, "GET", users, nil, &list)
	if list.Total != 0 {
		t.Fatalf("%d users exist after only bad requests", list.Total)
	}
	var s struct {
		Settings struct {
			RingTimeoutS int  `json:"ring_timeout_s"`
			Preview      bool `json:"preview"`
		}
	}
	op.must(http.StatusOK, "GET", "/v1/sites/"+site, nil, &s)
	if s.Settings.RingTimeoutS != 30 {
		t.Fatalf("ring timeout %d after a refused change, want the default 30", s.Settings.RingTimeoutS)
	}
}

// TestSettingsBounds: each setting takes both ends of its documented range
// and refuses one past either end, naming the field and changing nothing.
func TestSettingsBounds(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	site := op.site("Bounds Court")
	for _, f := range []struct {
		name   string
		lo, hi int
	}{
		{"ring_timeout_s", 10, 180},
		{"call_time_limit_s", 30, 600},
		{"door_open_duration_s", 1, 60},
		{"log_retention_days", 1, 3650},
	} {
		t.Run(f.name, func(t *testing.T) {
			set := func(v int) map[string]any { return map[string]any{"settings": map[string]int{f.name: v}} }
			var before struct{ Settings map[string]any }
			op.must(http.StatusOK, "GET", "/v1/sites/"+site, nil, &before)
			if before.Settings[f.name] == nil {
				t.Fatalf("the site shows no %s: %v", f.name, before.Settings)
			}
			for _, v := range []int{f.lo - 1, f.hi + 1} {
				msg := op.wantError(http.StatusUnprocessableEntity, "invalid", "PATCH", "/v1/sites/"+site, set(v))
				if want := fmt.Sprintf("%s must be %d to %d", f.name, f.lo, f.hi); !strings.Contains(msg, want) {
					t.Errorf("%d: message %q, want %q", v, msg, want)
				}
			}
			var after struct{ Settings map[string]any }
			op.must(http.StatusOK, "GET", "/v1/sites/"+site, nil, &after)
			if after.Settings[f.name] != before.Settings[f.name] {
				t.Errorf("after two refused values: %v, want %v as before", after.Settings[f.name], before.Settings[f.name])
			}
			for _, v := range []int{f.lo, f.hi} {
				var s struct{ Settings map[string]any }
				op.must(http.StatusOK, "PATCH", "/v1/sites/"+site, set(v), &s)
				if s.Settings[f.name] != float64(v) {
					t.Errorf("set to %d: the site has %v", v, s.Settings[f.name])
				}
			}
		})
	}
}
