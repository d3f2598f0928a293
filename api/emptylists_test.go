package api_test

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestEmptyListsAreArrays: every list a response holds is a JSON array,
// [] when empty, never null: a client iterating over one must not have to
// check for null first.
func TestEmptyListsAreArrays(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	site := op.site("Empty Court")
	other := op.site("Tagless Court")
	var u struct{ ID string }
	op.must(http.StatusCreated, "POST", "/v1/sites/"+other+"/users", map[string]any{"email": "e@example.com", "number": "7", "display_name": "E", "send_invitation": false}, &u)
	cases := []struct{ path, key string }{
		{"/v1/sites/" + site + "/api-keys", "api_keys"},
		{"/v1/sites/" + site + "/entries", "entries"},
		{"/v1/sites/" + site + "/devices", "devices"},
		{"/v1/sites/" + site + "/codes", "codes"},
		{"/v1/sites/" + site + "/calls", "calls"},
		{"/v1/sites/" + site + "/logs/call", "events"},
		{"/v1/sites/" + site + "/logs/door", "events"},
		{"/v1/sites/" + other + "/users/" + u.ID, "tags"},
	}
	for _, c := range cases {
		var out map[string]json.RawMessage
		op.must(http.StatusOK, "GET", c.path, nil, &out)
		if got := string(out[c.key]); got != "[]" {
			t.Errorf("GET %s: %q is %s, want []", c.path, c.key, got)
		}
	}
}
