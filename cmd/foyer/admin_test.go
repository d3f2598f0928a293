package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/foyer-intercom/foyer/accounts"
	"github.com/foyer-intercom/foyer/internal/redistest"
	"github.com/foyer-intercom/foyer/internal/testtool"
)

// TestCreateOwnerThenSignIn: `foyer admin create-owner` makes the operator
// account (password from the environment, or standard input, never a
// flag); the server started on the same data directory signs it in.
func TestCreateOwnerThenSignIn(t *testing.T) {
	bin := foyerBin(t)
	dir := t.TempDir()
	create := exec.Command(bin, "admin", "create-owner", "--email", "Owner@Example.com", "--data-dir", dir)
	create.Env = append(os.Environ(), "FOYER_ADMIN_PASSWORD=owner password 1", "FOYER_DATA_DR=typo")
	out, err := create.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "owner@example.com") {
		t.Fatalf("create-owner: %v\n%s", err, out)
	}
	// A FOYER_ variable naming no key is warned about, as serve does; the
	// password's variable is foyer's own and is not.
	if !strings.Contains(string(out), "FOYER_DATA_DR names no configuration key") || strings.Contains(string(out), "FOYER_ADMIN_PASSWORD") {
		t.Fatalf("create-owner's warnings:\n%s", out)
	}
	again := exec.Command(bin, "admin", "create-owner", "--email", "owner@example.com", "--data-dir", dir)
	again.Stdin = strings.NewReader("another password\n")
	if out, err := again.CombinedOutput(); err == nil || !strings.Contains(string(out), "exists") {
		t.Fatalf("a second create-owner for the same e-mail: %v\n%s", err, out)
	}
	weak := exec.Command(bin, "admin", "create-owner", "--email", "weak@example.com", "--data-dir", dir)
	weak.Stdin = strings.NewReader("short\n")
	if out, err := weak.CombinedOutput(); err == nil || !strings.Contains(string(out), "at least 10") {
		t.Fatalf("a weak password: %v\n%s", err, out)
	}

	addr := freeAddr(t)
	serve := exec.Command(bin, "serve", "--listen", addr, "--data-dir", dir)
	serve.Env = append(os.Environ(), "FOYER_TURN_ENABLED=false")
	var logs bytes.Buffer
	serve.Stderr = &logs
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = serve.Process.Kill()
			_ = serve.Wait() // after this, logs is ours to read
		}
	}
	t.Cleanup(stop)
	waitReady(t, "http://"+addr+"/readyz")
	login := func(pw string) int {
		body := fmt.Sprintf(`{"email":"owner@example.com","password":%q}`, pw)
		resp, err := http.Post("http://"+addr+"/v1/admin/login", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct{ Admin struct{ Operator bool } }
		_ = json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode == http.StatusOK && !out.Admin.Operator {
			t.Error("create-owner made an account that is not an operator")
		}
		return resp.StatusCode
	}
	if s := login("another password"); s != http.StatusUnauthorized {
		t.Fatalf("the refused second password signs in: %d", s)
	}
	s := login("owner password 1")
	stop()
	if s != http.StatusOK {
		t.Fatalf("sign-in: %d; server log:\n%s", s, logs.String())
	}
	if strings.Contains(logs.String(), "owner password 1") {
		t.Fatal("the password appears in the server log")
	}
}

// TestKill9KeepsAcknowledgedChanges: every admin change the API
// acknowledged survives SIGKILL of the server right after the answer
// (bbolt commits with fsync before Apply returns).
func TestKill9KeepsAcknowledgedChanges(t *testing.T) {
	bin := foyerBin(t)
	dir := t.TempDir()
	createOwner(t, bin, dir)
	start := func() (adminNode, *exec.Cmd) { return startAdminNode(t, bin, dir) }

	n, srv := start()
	tok := n.login()
	s, site := n.call(tok, "POST", "/v1/sites", `{"name":"Kill Court"}`)
	if s != http.StatusCreated {
		t.Fatalf("create site: %d %v", s, site)
	}
	id := site["id"].(string)
	var users []string
	for i := range 20 {
		body := fmt.Sprintf(`{"email":"k%d@example.com","number":"%d","display_name":"K %d","send_invitation":false}`, i, 100+i, i)
		if s, out := n.call(tok, "POST", "/v1/sites/"+id+"/users", body); s != http.StatusCreated {
			t.Fatalf("add user %d: %d %v", i, s, out)
		}
		users = append(users, fmt.Sprintf("k%d@example.com", i))
	}
	_ = srv.Process.Signal(os.Kill) // right after the last acknowledged change
	_ = srv.Wait()

	n, _ = start()
	tok = n.login()
	s, list := n.call(tok, "GET", "/v1/sites/"+id+"/users", "")
	if s != http.StatusOK {
		t.Fatalf("after the restart: %d %v", s, list)
	}
	got := map[string]bool{}
	for _, u := range list["users"].([]any) {
		got[u.(map[string]any)["email"].(string)] = true
	}
	for _, u := range users {
		if !got[u] {
			t.Errorf("%s, acknowledged before SIGKILL, is gone after the restart", u)
		}
	}
	s, audit := n.call(tok, "GET", "/v1/sites/"+id+"/logs/audit", "")
	if s != http.StatusOK || len(audit["events"].([]any)) < 21 {
		t.Errorf("audit log after the restart: %d, %d entries; want the site's creation and 20 additions", s, len(audit["events"].([]any)))
	}
}

// TestStorageFull: with the store unable to grow (a file-size limit stands
// in for a full disk), admin changes fail with 507 and a clear message, the
// node keeps serving, and after a restart with room again every
// acknowledged change is there and none of the refused ones.
func TestStorageFull(t *testing.T) {
	prlimit := testtool.Require(t, "prlimit", "util-linux")
	bin := foyerBin(t)
	dir := t.TempDir()
	createOwner(t, bin, dir)

	// The store may not grow past 512 KiB: a full disk, as the process
	// sees it (writes fail with EFBIG).
	n, srv := startAdminNode(t, bin, dir, prlimit, "--fsize=524288", "--")
	tok := n.login()
	s, site := n.call(tok, "POST", "/v1/sites", `{"name":"Full Court"}`)
	if s != http.StatusCreated {
		t.Fatalf("create site: %d %v", s, site)
	}
	id := site["id"].(string)
	acked := map[string]bool{}
	var refused []string
	for i := 0; len(refused) < 3; i++ {
		if i > 20000 {
			t.Fatal("the store never filled up: is the file-size limit in force?")
		}
		addr := fmt.Sprintf("full%05d@example.com", i)
		body := fmt.Sprintf(`{"email":%q,"number":"%d","display_name":"Resident %d with a longish name to fill pages","send_invitation":false}`, addr, 1+i/6, i)
		switch s, out := n.call(tok, "POST", "/v1/sites/"+id+"/users", body); s {
		case http.StatusCreated:
			acked[addr] = true
		case http.StatusInsufficientStorage:
			e := out["error"].(map[string]any)
			if e["code"] != "storage_full" || !strings.Contains(e["message"].(string), "nothing was changed") {
				t.Fatalf("refused write: %v", out)
			}
			refused = append(refused, addr)
		default:
			t.Fatalf("add user %d: %d %v, want 201 or 507", i, s, out)
		}
	}
	if h, err := http.Get(n.base + "/healthz"); err != nil || h.StatusCode != http.StatusOK {
		t.Fatalf("the node stopped serving with its store full: %v", err)
	}
	_ = srv.Process.Kill()
	_ = srv.Wait()

	n, _ = startAdminNode(t, bin, dir)
	tok = n.login()
	s, list := n.call(tok, "GET", "/v1/sites/"+id+"/users", "")
	if s != http.StatusOK {
		t.Fatalf("after the restart: %d %v", s, list)
	}
	got := map[string]bool{}
	for _, u := range list["users"].([]any) {
		got[u.(map[string]any)["email"].(string)] = true
	}
	for a := range acked {
		if !got[a] {
			t.Errorf("%s was acknowledged but is gone", a)
		}
	}
	for _, a := range refused {
		if got[a] {
			t.Errorf("%s was refused but is there", a)
		}
	}
	if len(got) != len(acked) {
		t.Errorf("%d users after the restart, %d acknowledged", len(got), len(acked))
	}
	if s, out := n.call(tok, "POST", "/v1/sites/"+id+"/users", `{"email":"after@example.com","number":"999","display_name":"After","send_invitation":false}`); s != http.StatusCreated {
		t.Fatalf("a write with room again: %d %v", s, out)
	}
	t.Logf("%d changes acknowledged before the store filled; %d refused with 507", len(acked), len(refused))
}

// TestStoreUnavailable: with the shared Redis stopped, or stalled past the
// client's I/O timeout, the admin API answers 503 service_unavailable
// with a Retry-After (try again), not 500 internal error; the node keeps
// serving; once Redis is back (restarted from its saved data) the same
// session works, and the change refused meanwhile was not made.
func TestStoreUnavailable(t *testing.T) {
	n, srv, tok := redisAdminNode(t)
	unavailable := func(when, method, path, body string) {
		t.Helper()
		s, out, retry := n.callWithRetry(tok, method, path, body)
		e, _ := out["error"].(map[string]any)
		if s != http.StatusServiceUnavailable || e["code"] != "service_unavailable" || retry != "5" {
			t.Errorf("%s, %s %s: %d %v (Retry-After %q), want 503 service_unavailable, Retry-After 5", when, method, path, s, out, retry)
		}
	}

	// Stalled: every request waits out the client's I/O timeout.
	srv.Pause(t, 3*time.Second)
	unavailable("Redis stalled", "GET", "/v1/sites", "")

	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	if err := rdb.Save(context.Background()).Err(); err != nil { // waits for the pause's end
		t.Fatal(err)
	}
	srv.Stop()
	unavailable("Redis stopped", "GET", "/v1/sites", "")
	unavailable("Redis stopped", "POST", "/v1/sites", `{"name":"During"}`)
	if s, out := n.call("", "POST", "/v1/admin/login", `{"email":"op@example.com","password":"operator password"}`); s != http.StatusServiceUnavailable {
		t.Errorf("sign-in with Redis stopped: %d %v, want 503", s, out)
	}
	if h, err := http.Get(n.base + "/healthz"); err != nil || h.StatusCode != http.StatusOK {
		t.Fatalf("the node stopped serving with Redis stopped: %v", err)
	}

	srv.Restart(t) // from the data saved above, as a Redis with persistence restarts
	var sites []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		s, names, out := n.siteNames(tok)
		if s == http.StatusOK {
			sites = names
			break
		}
		if s != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("with Redis back: %d %v, want 200 (503 for a while at most)", s, out)
		}
	}
	if !slices.Equal(sites, []string{"Before"}) {
		t.Fatalf("sites after the outage: %q, want only the one made before it", sites)
	}
}

// TestRedisStoreFull: with the shared Redis at its maxmemory (noeviction:
// every write refused), a change answers 507 storage_full telling the
// user to tell the operator, not 500; reads go on; once there is room
// again changes are made, and the refused one was not.
func TestRedisStoreFull(t *testing.T) {
	n, srv, tok := redisAdminNode(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	ctx := context.Background()
	if err := rdb.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	s, out := n.call(tok, "POST", "/v1/sites", `{"name":"Refused"}`)
	e, _ := out["error"].(map[string]any)
	if s != http.StatusInsufficientStorage || e["code"] != "storage_full" || !strings.Contains(fmt.Sprint(e["message"]), "tell the operator") {
		t.Fatalf("a change with Redis full: %d %v, want 507 storage_full", s, out)
	}
	if s, names, out := n.siteNames(tok); s != http.StatusOK || !slices.Equal(names, []string{"Before"}) {
		t.Fatalf("a read with Redis full: %d %v", s, out)
	}
	if err := rdb.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if s, out := n.call(tok, "POST", "/v1/sites", `{"name":"After"}`); s != http.StatusCreated {
		t.Fatalf("a change with room again: %d %v", s, out)
	}
	if s, names, out := n.siteNames(tok); s != http.StatusOK || !slices.Equal(names, []string{"After", "Before"}) {
		t.Fatalf("sites: %d %q %v, want After and Before, not the refused one", s, names, out)
	}
}

// TestRedisLogsMovedIntoSiteParts: log entries a node of before the
// per-site hashes kept in the logs' single Redis hash are moved into their
// site's hash by the next node to start, and its API lists them.
func TestRedisLogsMovedIntoSiteParts(t *testing.T) {
	_, srv, tok := redisAdminNode(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	ctx := context.Background()
	sites, err := rdb.SMembers(ctx, "{kv}:parts:events").Result()
	if err != nil || len(sites) != 1 {
		t.Fatalf("the logs' parts after the first site's audit entry: %v, %v; want that site's", sites, err)
	}
	site := sites[0]
	// As a node of before the parts wrote it: in the single hash.
	at := time.Now().UTC().Add(-time.Hour) // within the site's retention
	old := `{"id":"e_old","site":"` + site + `","kind":"audit","time":"` + at.Format(time.RFC3339Nano) + `","actor":"someone@example.com","outcome":"site.rename","details":"an old entry"}`
	if err := rdb.HSet(ctx, "{kv}:t:events", fmt.Sprintf("%s/audit/%020d/e_old", site, at.UnixNano()), old).Err(); err != nil {
		t.Fatal(err)
	}
	a, _ := startAdminNode(t, foyerBin(t), t.TempDir(), "env", "FOYER_REDIS_URL=redis://"+srv.Addr, "FOYER_REDIS_NODE_ID=node-b")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		n, err := rdb.HLen(ctx, "{kv}:t:events").Result()
		if err == nil && n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the single hash keeps %d entries (%v) 10 s after a node started; want none", n, err)
		}
	}
	s, out := a.call(tok, "GET", "/v1/sites/"+site+"/logs/audit", "")
	evs, _ := out["events"].([]any)
	found := false
	for _, e := range evs {
		found = found || e.(map[string]any)["details"] == "an old entry"
	}
	if s != http.StatusOK || !found {
		t.Fatalf("the site's audit log from node b: %d %v, want the old entry in it", s, out)
	}
}

// TestBackupRestore: an operator downloads a backup from a running node
// (which leaves no file in its data directory). `foyer admin restore`
// refuses it while the node runs, and refuses a file that is no foyer
// store, changing nothing; with the node stopped it puts the backup in
// place, keeping the store it replaces, and the node started again has
// what it had then, accounts included (the owner signs in with their
// password), and nothing made after it. Restored into an empty data
// directory it keeps nothing.
func TestBackupRestore(t *testing.T) {
	bin := foyerBin(t)
	dir := t.TempDir()
	createOwner(t, bin, dir)
	n, srv := startAdminNode(t, bin, dir)
	tok := n.login()
	if s, out := n.call(tok, "POST", "/v1/sites", `{"name":"Kept"}`); s != http.StatusCreated {
		t.Fatalf("create site: %d %v", s, out)
	}
	before, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest("GET", n.base+"/v1/backup", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	backup, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || int64(len(backup)) != resp.ContentLength {
		t.Fatalf("backup: %d, %d bytes of %d, %v", resp.StatusCode, len(backup), resp.ContentLength, err)
	}
	if after, err := os.ReadDir(dir); err != nil || len(after) != len(before) {
		t.Fatalf("the data directory held %v before the backup, %v after (%v)", before, after, err)
	}
	if s, out := n.call(tok, "POST", "/v1/sites", `{"name":"After"}`); s != http.StatusCreated {
		t.Fatalf("create site: %d %v", s, out)
	}
	file := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(file, backup, 0o600); err != nil {
		t.Fatal(err)
	}
	restore := func(dataDir, file string) (string, error) {
		out, err := exec.Command(bin, "admin", "restore", "--data-dir", dataDir, file).CombinedOutput()
		return string(out), err
	}
	if out, err := restore(dir, file); err == nil || !strings.Contains(out, "in use") {
		t.Fatalf("a restore while the node runs: %v, %s; want it refused", err, out)
	}
	_ = srv.Process.Kill()
	_ = srv.Wait()
	current, err := os.ReadFile(filepath.Join(dir, "foyer.db"))
	if err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(t.TempDir(), "error.json")
	if err := os.WriteFile(garbage, []byte(`{"error":{"code":"not_found"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := restore(dir, garbage); err == nil || !strings.Contains(out, "not a foyer store") {
		t.Fatalf("a restore of a file that is no store: %v, %s; want it refused", err, out)
	}
	if now, err := os.ReadFile(filepath.Join(dir, "foyer.db")); err != nil || !bytes.Equal(now, current) {
		t.Fatalf("the refused restore changed the store (%v)", err)
	}

	out, err := restore(dir, file)
	if err != nil {
		t.Fatalf("restore: %v, %s", err, out)
	}
	kept, _ := filepath.Glob(filepath.Join(dir, "foyer.db.before-restore-*"))
	if len(kept) != 1 || !strings.Contains(out, kept[0]) {
		t.Fatalf("restore said %q; kept %v, want the store it replaced kept and named", out, kept)
	}
	if was, err := os.ReadFile(kept[0]); err != nil || !bytes.Equal(was, current) {
		t.Fatalf("the kept store is not the one replaced (%v)", err)
	}
	n, _ = startAdminNode(t, bin, dir)
	s, names, answer := n.siteNames(n.login())
	if s != http.StatusOK {
		t.Fatalf("sites after the restore: %d %v", s, answer)
	}
	if !slices.Equal(names, []string{"Kept"}) {
		t.Fatalf("sites after the restore: %q, want only the one made before the backup", names)
	}

	empty := t.TempDir()
	if out, err := restore(empty, file); err != nil {
		t.Fatalf("restore into an empty data directory: %v, %s", err, out)
	}
	if left, _ := os.ReadDir(empty); len(left) != 1 || left[0].Name() != "foyer.db" {
		t.Fatalf("an empty data directory after a restore holds %v, want foyer.db only", left)
	}
}

// redisAdminNode runs `foyer serve` on a Redis of its own, with
// createOwner's account signed in (the token returned) and a site named
// "Before" made.
func redisAdminNode(t *testing.T) (adminNode, *redistest.Server, string) {
	t.Helper()
	bin := foyerBin(t)
	srv := redistest.StartServer(t)
	env := []string{"FOYER_REDIS_URL=redis://" + srv.Addr, "FOYER_REDIS_NODE_ID=node-a"}
	dir := t.TempDir()
	createOwner(t, bin, dir, env...)
	n, _ := startAdminNode(t, bin, dir, append([]string{"env"}, env...)...)
	tok := n.login()
	if s, out := n.call(tok, "POST", "/v1/sites", `{"name":"Before"}`); s != http.StatusCreated {
		t.Fatalf("create site: %d %v", s, out)
	}
	return n, srv, tok
}

// createOwner runs `foyer admin create-owner` for op@example.com (password
// "operator password") on the data directory dir, with env (such as
// FOYER_REDIS_URL) added to its environment.
func createOwner(t *testing.T, bin, dir string, env ...string) {
	t.Helper()
	create := exec.Command(bin, "admin", "create-owner", "--email", "op@example.com", "--data-dir", dir)
	create.Env = append(os.Environ(), append(env, "FOYER_ADMIN_PASSWORD=operator password")...)
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("create-owner: %v\n%s", err, out)
	}
}

// adminNode is a running `foyer serve` driven through its admin API.
type adminNode struct {
	t    *testing.T
	base string // http://host:port
}

// startAdminNode runs `foyer serve` on dir, behind the command prefix (such
// as prlimit and its arguments) when one is given, and waits until it is
// ready. The test's clean-up kills it.
func startAdminNode(t *testing.T, bin, dir string, prefix ...string) (adminNode, *exec.Cmd) {
	t.Helper()
	addr := freeAddr(t)
	args := slices.Concat(prefix, []string{bin, "serve", "--listen", addr, "--data-dir", dir})
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "FOYER_TURN_ENABLED=false")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitReady(t, "http://"+addr+"/readyz")
	return adminNode{t: t, base: "http://" + addr}, cmd
}

// call sends one API request (JSON body, bearer token when not empty) and
// returns the status and the decoded answer.
func (n adminNode) call(token, method, path, body string) (int, map[string]any) {
	n.t.Helper()
	s, out, _ := n.callWithRetry(token, method, path, body)
	return s, out
}

// callWithRetry is call, and returns the answer's Retry-After header too.
func (n adminNode) callWithRetry(token, method, path, body string) (int, map[string]any, string) {
	n.t.Helper()
	req, err := http.NewRequest(method, n.base+path, strings.NewReader(body))
	if err != nil {
		n.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, resp.Header.Get("Retry-After")
}

// siteNames lists the sites token sees: the status, their names (when
// 200), and the decoded answer.
func (n adminNode) siteNames(token string) (int, []string, map[string]any) {
	n.t.Helper()
	s, out := n.call(token, "GET", "/v1/sites", "")
	var names []string
	if s == http.StatusOK {
		for _, site := range out["sites"].([]any) {
			names = append(names, site.(map[string]any)["name"].(string))
		}
	}
	return s, names, out
}

// login signs createOwner's account in and returns its session token.
func (n adminNode) login() string {
	n.t.Helper()
	s, out := n.call("", "POST", "/v1/admin/login", `{"email":"op@example.com","password":"operator password"}`)
	if s != http.StatusOK {
		n.t.Fatalf("login: %d %v", s, out)
	}
	return out["token"].(string)
}

// TestCreateOwnerPasswordLineEnding: the password read from standard
// input is the line without its ending, "\n" or "\r\n" (a Windows
// terminal, a file written there), so the operator signs in with what
// they typed.
func TestCreateOwnerPasswordLineEnding(t *testing.T) {
	t.Setenv("FOYER_ADMIN_PASSWORD", "")
	for name, ending := range map[string]string{"lf": "\n", "crlf": "\r\n"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			var stdout, stderr bytes.Buffer
			err := admin([]string{"create-owner", "--email", "op@example.com", "--data-dir", dir}, strings.NewReader("operator password"+ending), &stdout, &stderr)
			if err != nil {
				t.Fatalf("create-owner: %v\n%s", err, stderr.String())
			}
			cfg := mustDefault(t)
			cfg.DataDir = dir
			b, err := openBackend(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer b.close()
			if _, err := accounts.New(b.records, nil).LoginAdmin(context.Background(), "op@example.com", "operator password"); err != nil {
				t.Fatalf("signing in with the password typed: %v", err)
			}
		})
	}
}

// TestMistypedCommandFails: a command or admin subcommand foyer does not
// know exits non-zero and changes nothing, so a script's typo is not taken
// for success, nor run as another command.
func TestMistypedCommandFails(t *testing.T) {
	t.Setenv("FOYER_ADMIN_PASSWORD", "operator password")
	dir := t.TempDir()
	for _, args := range [][]string{
		{"sed", "--data-dir", dir, "site.yaml"},
		{"admin", "create-owners", "--email", "op@example.com", "--data-dir", dir},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code == 0 {
			t.Errorf("foyer %v exited 0; stdout %q", args, stdout.String())
		}
	}
	if files, _ := os.ReadDir(dir); len(files) != 0 {
		t.Fatalf("data_dir holds %v after mistyped commands", files)
	}
}

// TestDemoPrintsWorkingCredentials: what `serve --demo` prints works: the
// resident link carries demo-phone's token and the door station link
// front-door's, and the portal password printed on a later start (the
// operator exists by then) signs in, as does the resident's password (a
// chosen one, not temporary: the page connects at once).
func TestDemoPrintsWorkingCredentials(t *testing.T) {
	cfg := mustDefault(t)
	cfg.DataDir = t.TempDir()
	b, err := openBackend(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	ctx := context.Background()
	var out bytes.Buffer
	if err := seedDemo(ctx, b.store, &out, "http://demo.test"); err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{}
	for line := range strings.Lines(out.String()) {
		if f := strings.Fields(line); len(f) == 2 && strings.HasPrefix(f[1], "fyr_") {
			tokens[f[0]] = f[1]
		}
	}
	for _, want := range []string{"/resident#token=" + tokens["demo-phone"] + "\n", "/door#token=" + tokens["front-door"] + " "} {
		if tokens["demo-phone"] == "" || tokens["front-door"] == "" || !strings.Contains(out.String(), want) {
			t.Fatalf("want a link ending %q in:\n%s", want, out.String())
		}
	}
	acc := accounts.New(b.records, nil)
	var password string
	for range 2 { // the second start finds the operator made by the first
		var out bytes.Buffer
		if err := demoOperator(ctx, acc, &out, "http://demo.test"); err != nil {
			t.Fatal(err)
		}
		_, rest, _ := strings.Cut(out.String(), "password ")
		password, _, _ = strings.Cut(rest, ";")
	}
	if _, err := acc.LoginAdmin(ctx, demoEmail, password); err != nil {
		t.Fatalf("the password printed on the second start (%q): %v", password, err)
	}
	out.Reset()
	if err := demoResident(ctx, acc, b.store, &out, "http://demo.test"); err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(out.String(), "password ")
	password, _, _ = strings.Cut(rest, ";")
	resident, err := b.store.UserByEmail(ctx, demoResidentEmail)
	if err != nil {
		t.Fatal(err)
	}
	if cred, err := acc.LoginApp(ctx, demoResidentEmail, resident.ID, password); err != nil || cred.Temporary ||
		!strings.HasPrefix(out.String(), "Resident app: http://demo.test/resident  (sign in as "+demoResidentEmail+",") {
		t.Fatalf("the resident's sign-in printed (%q): %v, %+v", out.String(), err, cred)
	}
}
