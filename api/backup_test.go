package api_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/foyer-intercom/foyer/api"
	"github.com/foyer-intercom/foyer/directory"
)

// TestBackup: an operator's GET /v1/backup is the whole store as a file
// that opens as one (sites and accounts both), with its length and a name
// to save it under; an API key, even an operator's, is refused; a second
// backup while one is taken answers 503; and a deployment on Redis
// answers 404 saying how to back it up instead.
func TestBackup(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	site := op.site("Backed Up Court")
	req, err := http.NewRequest("GET", e.srv.URL+"/v1/backup", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+op.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	path := filepath.Join(t.TempDir(), "foyer.db")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := out.ReadFrom(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	_ = out.Close()
	if resp.StatusCode != http.StatusOK || n == 0 || n != resp.ContentLength ||
		resp.Header.Get("Content-Type") != "application/octet-stream" ||
		!strings.HasPrefix(resp.Header.Get("Content-Disposition"), `attachment; filename="foyer-`) {
		t.Fatalf("backup: %d, %d bytes of %d, headers %v", resp.StatusCode, n, resp.ContentLength, resp.Header)
	}
	restored, err := directory.OpenBolt(path)
	if err != nil {
		t.Fatalf("the backup does not open as a store: %v", err)
	}
	defer restored.Close()
	if s, err := restored.Site(context.Background(), directory.SiteID(site)); err != nil || s.Name != "Backed Up Court" {
		t.Fatalf("the site in the backup: %+v, %v", s, err)
	}
	if !strings.Contains(e.logs.String(), `"msg":"backup sent"`) {
		t.Error("no backup sent in the log")
	}

	var key struct{ Key string }
	op.must(http.StatusCreated, "POST", "/v1/sites/"+site+"/api-keys", map[string]string{"name": "backups", "role": "admin"}, &key)
	(&client{e: e, token: key.Key}).wantError(http.StatusForbidden, "forbidden", "GET", "/v1/backup", nil)

	// One at a time: each holds a copy of the whole store on disk.
	taking, release := make(chan struct{}), make(chan struct{})
	var taken atomic.Int32
	busy := newEnvWith(t, func(c *api.Config) {
		backup := c.Backup
		c.Backup = func() (*os.File, error) {
			if taken.Add(1) == 1 { // the first is held until released
				taking <- struct{}{}
				<-release
			}
			return backup()
		}
	})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	t.Cleanup(releaseOnce) // before the server closes, which waits for the held request
	busyOp := busy.operator()
	first := make(chan int, 1)
	go func() {
		s, _ := busyOp.do("GET", "/v1/backup", nil)
		first <- s
	}()
	<-taking
	busyOp.wantError(http.StatusServiceUnavailable, "service_unavailable", "GET", "/v1/backup", nil)
	releaseOnce()
	if s := <-first; s != http.StatusOK {
		t.Fatalf("the backup taken meanwhile: %d, want 200", s)
	}
	busyOp.must(http.StatusOK, "GET", "/v1/backup", nil, nil)
	if n := taken.Load(); n != 2 {
		t.Fatalf("%d backups taken, want 2 (the refused one takes none)", n)
	}

	onRedis := newEnvWith(t, func(c *api.Config) { c.Backup = nil })
	if msg := onRedis.operator().wantError(http.StatusNotFound, "not_found", "GET", "/v1/backup", nil); !strings.Contains(msg, "Redis") {
		t.Errorf("no backup with Redis: %q, want it to say Redis backs the data up", msg)
	}
}
