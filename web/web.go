// Package web serves the browser clients embedded in the binary: a door
// station page (camera, microphone, keypad) and a resident page (rings with
// the live preview, answer, decline, open the door). Plain HTML and
// JavaScript modules speaking protocol v1; no build step.
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// csp allows only this origin's scripts and styles, and WebSockets to it.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self' ws: wss:; media-src 'self' blob:; img-src 'self' data:; frame-ancestors 'none'"

// Handler serves /door, /resident and /static/….
func Handler() http.Handler {
	files, _ := fs.Sub(static, "static") // the embedded tree has it
	mux := http.NewServeMux()
	page := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			b, err := fs.ReadFile(files, name)
			if err != nil {
				http.NotFound(w, r)
				return
			}
			headers(w)
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write(b)
		}
	}
	mux.HandleFunc("GET /door", page("door.html"))
	mux.HandleFunc("GET /resident", page("resident.html"))
	fileServer := http.StripPrefix("/static/", http.FileServerFS(files))
	mux.Handle("GET /static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		headers(w)
		fileServer.ServeHTTP(w, r)
	}))
	return mux
}

func headers(w http.ResponseWriter) {
	w.Header().Set("Content-Security-Policy", csp)
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
}
