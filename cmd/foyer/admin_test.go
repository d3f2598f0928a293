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
