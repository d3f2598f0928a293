package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	h := Handler()
	cases := []struct {
		path, wantType string
		status         int
	}{
		{"/door", "text/html", 200},
		{"/resident", "text/html", 200},
		{"/static/door.js", "text/javascript", 200},
		{"/static/foyer.js", "text/javascript", 200},
		{"/static/style.css", "text/css", 200},
		{"/static/nope.js", "", 404},
		{"/admin", "", 404},
	}
	for _, tc := range cases {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
		if rec.Code != tc.status {
			t.Errorf("%s: status %d, want %d", tc.path, rec.Code, tc.status)
			continue
		}
		if tc.status != 200 {
			continue
		}
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, tc.wantType) {
			t.Errorf("%s: Content-Type %q, want %s", tc.path, ct, tc.wantType)
		}
		if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "connect-src 'self' ws: wss:") {
			t.Errorf("%s: CSP %q", tc.path, csp)
		}
	}
}
