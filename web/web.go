// Package web serves the browser clients embedded in the binary: a door
// station page (camera, microphone, keypad), a resident page (rings with
// the live preview, answer, decline, open the door), the admin portal, and
// the page a password-reset e-mail links to. Plain HTML and JavaScript
// modules speaking protocol v1 and the /v1 API; no build step.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"io/fs"
	"net/http"
	"path"
	"time"
)

//go:embed static
var static embed.FS

// csp allows only this origin's scripts, styles and media, and WebSockets
// (the signalling connection) to any host, since a reverse proxy may put
// /v1/signal on ws: or wss:.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"media-src 'self' blob: mediastream:; connect-src 'self' ws: wss:; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// types are the content types of the embedded files, by extension. They are
// fixed here rather than taken from the system's MIME tables, because module
// scripts load only with a JavaScript type.
var types = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

// file is one embedded file, ready to serve.
type file struct {
	body  []byte
	ctype string
	etag  string
}

// Handler serves /door, /resident, /admin (the portal), /reset (where the link in a
// password-reset e-mail, /reset#token=…, leads) and the files under /static/. Anything
// else, directories included, is 404.
func Handler() http.Handler {
	files := map[string]file{}
	err := fs.WalkDir(static, "static", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := static.ReadFile(name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		files["/"+name] = file{
			body:  body,
			ctype: types[path.Ext(name)],
			etag:  `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`,
		}
		return nil
	})
	if err != nil {
		panic("web: reading the embedded files: " + err.Error()) // the embedded tree is fixed at build time
	}
	pages := map[string]string{"/door": "/static/door.html", "/resident": "/static/resident.html", "/admin": "/static/admin.html",
		"/reset": "/static/reset.html"}

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, page := pages[r.URL.Path]
		if !page {
			name = r.URL.Path
		}
		f, ok := files[name]
		if !ok || f.ctype == "" || (!page && path.Ext(name) == ".html") { // a page has one address
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", f.ctype)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", f.etag)
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Permissions-Policy", "camera=(self), microphone=(self)")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body)) // answers If-None-Match and HEAD
	})
}
