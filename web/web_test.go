package web

import (
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/foyer-intercom/foyer/accounts"
)

func TestHandler(t *testing.T) {
	h := Handler()
	cases := []struct {
		method, path, wantType string
		status                 int
	}{
		{"GET", "/door", "text/html; charset=utf-8", 200},
		{"GET", "/resident", "text/html; charset=utf-8", 200},
		{"GET", "/resident?x=1", "text/html; charset=utf-8", 200},
		{"HEAD", "/door", "text/html; charset=utf-8", 200},
		{"GET", "/static/door.js", "text/javascript; charset=utf-8", 200},
		{"GET", "/static/resident.js", "text/javascript; charset=utf-8", 200},
		{"GET", "/static/foyer.js", "text/javascript; charset=utf-8", 200},
		{"GET", "/static/style.css", "text/css; charset=utf-8", 200},
		{"GET", "/static/admin.js", "text/javascript; charset=utf-8", 200},
		{"GET", "/static/admin.css", "text/css; charset=utf-8", 200},
		{"GET", "/static/nope.js", "", 404},
		{"GET", "/static/", "", 404}, // no directory listings
		{"GET", "/static", "", 404},
		{"GET", "/door/", "", 404},
		{"GET", "/", "", 404},
		{"GET", "/admin", "text/html; charset=utf-8", 200},
		{"GET", "/admin/", "", 404},
		{"GET", "/static/admin.html", "", 404}, // only as /admin
		{"GET", "/static/../web.go", "", 404},
		{"GET", "/static/door.html", "", 404}, // only as /door
		{"POST", "/door", "", 405},
		{"GET", "/reset", "text/html; charset=utf-8", 200},
		{"GET", "/static/reset.js", "text/javascript; charset=utf-8", 200},
		{"GET", "/static/reset.html", "", 404}, // only as /reset
		{"GET", "/reset/", "", 404},
		{"POST", "/reset", "", 405}, // the page posts to /v1/app/password/reset, never to itself
	}
	for _, tc := range cases {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.status {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.path, rec.Code, tc.status)
			continue
		}
		if tc.status != 200 {
			continue
		}
		hdr := rec.Header()
		if ct := hdr.Get("Content-Type"); ct != tc.wantType {
			t.Errorf("%s: Content-Type %q, want %q", tc.path, ct, tc.wantType)
		}
		if cc := hdr.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("%s: Cache-Control %q, want no-cache", tc.path, cc)
		}
		if hdr.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no X-Content-Type-Options: nosniff", tc.path)
		}
		if rp := hdr.Get("Referrer-Policy"); rp != "no-referrer" {
			t.Errorf("%s: Referrer-Policy %q, want no-referrer", tc.path, rp)
		}
		if pp := hdr.Get("Permissions-Policy"); pp != "camera=(self), microphone=(self)" {
			t.Errorf("%s: Permissions-Policy %q, want camera and microphone for this origin only", tc.path, pp)
		}
		csp := hdr.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self' ws: wss:", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", tc.path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP %q allows something unsafe", tc.path, csp)
		}
		if tc.method == "HEAD" && rec.Body.Len() != 0 {
			t.Errorf("HEAD %s: %d body bytes", tc.path, rec.Body.Len())
		}
	}
}

// TestHandlerRevalidates: no-cache makes browsers ask again on every load;
// the ETag lets the answer be a 304 with no body.
func TestHandlerRevalidates(t *testing.T) {
	h := Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/static/foyer.js", nil))
	etag := rec.Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	req := httptest.NewRequest("GET", "/static/foyer.js", nil)
	req.Header.Set("If-None-Match", etag)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
		t.Fatalf("revalidation: status %d with %d bytes, want 304 and none", rec.Code, rec.Body.Len())
	}
}

// TestPagesUseOnlyTheirOwnFiles: with the CSP above, an inline script or
// style, or anything from another origin, would be blocked; the pages must
// not rely on one.
func TestPagesUseOnlyTheirOwnFiles(t *testing.T) {
	pages, err := fs.Glob(static, "static/*.html")
	if err != nil || len(pages) < 4 {
		t.Fatalf("pages %v, %v: want the portal, door station, resident and reset pages", pages, err)
	}
	for _, name := range pages {
		b, err := static.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		page := string(b)
		for _, bad := range []string{"<script>", "style=", " onclick=", "http://", "https://", "<style"} {
			if strings.Contains(page, bad) {
				t.Errorf("%s contains %q, which the CSP blocks or which leaves the origin", name, bad)
			}
		}
	}
}

// TestResetPage: the link a password-reset e-mail carries,
// PUBLIC_URL/reset#token=…, opens the page that spends the token (the
// fragment never reaches the server, so the page is the same for every
// token).
func TestResetPage(t *testing.T) {
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/reset", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /reset: status %d, want 200", rec.Code)
	}
	body := rec.Body.String()
	for _, want := range []string{`<script type="module" src="/static/reset.js">`, `<form id="reset"`, `type="password"`, `autocomplete="new-password"`} {
		if !strings.Contains(body, want) {
			t.Errorf("GET /reset: the page lacks %s", want)
		}
	}
}

// TestPasswordRuleMatchesServer: the pages check a new password by the
// server's rule before sending it (static/password.js); its numbers are
// the server's (accounts.CheckPassword), or a page would refuse what the
// server takes, or send what it refuses.
func TestPasswordRuleMatchesServer(t *testing.T) {
	b, err := static.ReadFile("static/password.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		fmt.Sprintf("export const minChars = %d;", accounts.MinPasswordLen),
		fmt.Sprintf("export const maxBytes = %d;", accounts.MaxPasswordLen),
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("static/password.js lacks %q", want)
		}
	}
}
