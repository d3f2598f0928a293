package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestCreateOwnerThenSignIn: `foyer admin create-owner` makes the operator
// account (password from the environment, or standard input, never a
// flag); the server started on the same data directory signs it in.
func TestCreateOwnerThenSignIn(t *testing.T) {
	bin := foyerBin(t)
	dir := t.TempDir()
	create := exec.Command(bin, "admin", "create-owner", "--email", "Owner@Example.com", "--data-dir", dir)
	create.Env = append(os.Environ(), "FOYER_ADMIN_PASSWORD=owner password 1")
	if out, err := create.CombinedOutput(); err != nil || !strings.Contains(string(out), "owner@example.com") {
		t.Fatalf("create-owner: %v\n%s", err, out)
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

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
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
	create := exec.Command(bin, "admin", "create-owner", "--email", "op@example.com", "--data-dir", dir)
	create.Env = append(os.Environ(), "FOYER_ADMIN_PASSWORD=operator password")
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("create-owner: %v\n%s", err, out)
	}
	start := func() (string, *exec.Cmd) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		cmd := exec.Command(bin, "serve", "--listen", addr, "--data-dir", dir)
		cmd.Env = append(os.Environ(), "FOYER_TURN_ENABLED=false")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		waitReady(t, "http://"+addr+"/readyz")
		return "http://" + addr, cmd
	}
	call := func(base, token, method, path, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	login := func(base string) string {
		s, out := call(base, "", "POST", "/v1/admin/login", `{"email":"op@example.com","password":"operator password"}`)
		if s != http.StatusOK {
			t.Fatalf("login: %d %v", s, out)
		}
		return out["token"].(string)
	}

	base, srv := start()
	tok := login(base)
	s, site := call(base, tok, "POST", "/v1/sites", `{"name":"Kill Court"}`)
	if s != http.StatusCreated {
		t.Fatalf("create site: %d %v", s, site)
	}
	id := site["id"].(string)
	var users []string
	for i := range 20 {
		body := fmt.Sprintf(`{"email":"k%d@example.com","number":"%d","display_name":"K %d","send_invitation":false}`, i, 100+i, i)
		if s, out := call(base, tok, "POST", "/v1/sites/"+id+"/users", body); s != http.StatusCreated {
			t.Fatalf("add user %d: %d %v", i, s, out)
		}
		users = append(users, fmt.Sprintf("k%d@example.com", i))
	}
	_ = srv.Process.Signal(os.Kill) // right after the last acknowledged change
	_ = srv.Wait()

	base, _ = start()
	tok = login(base)
	s, list := call(base, tok, "GET", "/v1/sites/"+id+"/users", "")
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
	s, audit := call(base, tok, "GET", "/v1/sites/"+id+"/logs/audit", "")
	if s != http.StatusOK || len(audit["events"].([]any)) < 21 {
		t.Errorf("audit log after the restart: %d, %d entries; want the site's creation and 20 additions", s, len(audit["events"].([]any)))
	}
}

// TestStorageFull: with the store unable to grow (a file-size limit stands
// in for a full disk), admin changes fail with 507 and a clear message, the
// node keeps serving, and after a restart with room again every
// acknowledged change is there and none of the refused ones.
func TestStorageFull(t *testing.T) {
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		if os.Getenv("FOYER_REQUIRE_TOOLS") == "1" {
			t.Fatal("prlimit is missing (util-linux) and FOYER_REQUIRE_TOOLS=1")
		}
		t.Skip("prlimit (util-linux) is missing")
	}
	bin := foyerBin(t)
	dir := t.TempDir()
	create := exec.Command(bin, "admin", "create-owner", "--email", "op@example.com", "--data-dir", dir)
	create.Env = append(os.Environ(), "FOYER_ADMIN_PASSWORD=operator password")
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("create-owner: %v\n%s", err, out)
	}
	start := func(limit bool) (string, *exec.Cmd) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		args := []string{bin, "serve", "--listen", addr, "--data-dir", dir}
		if limit {
			// The store may not grow past 512 KiB: a full disk, as the
			// process sees it (writes fail with EFBIG).
			args = append([]string{prlimit, "--fsize=524288", "--"}, args...)
		}
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "FOYER_TURN_ENABLED=false")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		waitReady(t, "http://"+addr+"/readyz")
		return "http://" + addr, cmd
	}
	call := func(base, token, method, path, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	login := func(base string) string {
		s, out := call(base, "", "POST", "/v1/admin/login", `{"email":"op@example.com","password":"operator password"}`)
		if s != http.StatusOK {
			t.Fatalf("login: %d %v", s, out)
		}
		return out["token"].(string)
	}

	base, srv := start(true)
	tok := login(base)
	s, site := call(base, tok, "POST", "/v1/sites", `{"name":"Full Court"}`)
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
		switch s, out := call(base, tok, "POST", "/v1/sites/"+id+"/users", body); s {
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
	if h, err := http.Get(base + "/healthz"); err != nil || h.StatusCode != http.StatusOK {
		t.Fatalf("the node stopped serving with its store full: %v", err)
	}
	_ = srv.Process.Kill()
	_ = srv.Wait()

	base, _ = start(false)
	tok = login(base)
	s, list := call(base, tok, "GET", "/v1/sites/"+id+"/users", "")
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
	if s, out := call(base, tok, "POST", "/v1/sites/"+id+"/users", `{"email":"after@example.com","number":"999","display_name":"After","send_invitation":false}`); s != http.StatusCreated {
		t.Fatalf("a write with room again: %d %v", s, out)
	}
	t.Logf("%d changes acknowledged before the store filled; %d refused with 507", len(acked), len(refused))
}
