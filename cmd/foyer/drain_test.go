package main

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestDrainWithACallUp: SIGTERM while a call is up turns /readyz 503 (the
// load balancer stops sending devices here) while the call may go on, an
// idle device is closed with 4012 to reconnect elsewhere, a new upgrade
// gets 503; and a second SIGTERM ends the process at once instead of
// waiting out drain_timeout (10 minutes here).
func TestDrainWithACallUp(t *testing.T) {
	bin := foyerBin(t)
	dir := t.TempDir()
	site, data := filepath.Join(dir, "site.yaml"), filepath.Join(dir, "data")
	if err := os.WriteFile(site, []byte(siteFile), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "seed", "--data-dir", data, site).Output()
	if err != nil {
		t.Fatalf("seed: %v", err)
	}
	tokens := parseTokens(t, out)

	n := &node{addr: freeAddr(t), logs: &lockedBuffer{}}
	n.cmd = exec.Command(bin, "serve", "--listen", n.addr, "--data-dir", data)
	n.cmd.Env = append(os.Environ(), "FOYER_TURN_ENABLED=false", "FOYER_MEDIA_LOOPBACK_ONLY=true", "FOYER_DRAIN_TIMEOUT=10m")
	n.cmd.Stderr = n.logs
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- n.cmd.Wait() }()
	t.Cleanup(func() { _ = n.cmd.Process.Kill(); <-exited })
	// logs stops the server, if it still runs, and returns what it logged.
	logs := func() string {
		_ = n.cmd.Process.Kill()
		err := <-exited
		exited <- err
		return n.logs.String()
	}
	waitReady(t, "http://"+n.addr+"/readyz")

	door := n.dial(t, tokens["front-door"])
	phone := n.dial(t, tokens["anna-phone"])
	idle := n.dial(t, tokens["garage-door"])
	if err := door.WriteJSON(map[string]any{"type": "call", "to": "101"}); err != nil {
		t.Fatal(err)
	}
	readType(t, door, "calling")
	ring := readType(t, phone, "ring")
	_ = phone.WriteJSON(map[string]any{"type": "answer", "call_id": ring["call_id"]})
	readType(t, phone, "answered")
	readType(t, door, "answered")

	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := idle.ReadMessage()
		if err == nil {
			continue
		}
		if !websocket.IsCloseError(err, 4012) {
			t.Fatalf("the idle door station's connection ended with %v, want close 4012", err)
		}
		break
	}
	for deadline := time.Now().Add(10 * time.Second); readyStatus(n.addr) != http.StatusServiceUnavailable; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz is not 503 10 s into the drain; logs:\n%s", logs())
		}
	}
	ws, resp, err := websocket.DefaultDialer.Dial("ws://"+n.addr+"/v1/signal", nil)
	if err == nil {
		ws.Close()
		t.Fatal("a new WebSocket upgrade was accepted during the drain")
	}
	if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a new upgrade during the drain: %v %v, want 503", resp, err)
	}
	// The call is still up: the phone's connection was not closed.
	if err := phone.WriteJSON(map[string]any{"type": "ping"}); err != nil {
		t.Fatalf("the phone in the call: %v", err)
	}
	readType(t, phone, "pong")

	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err // for the clean-up; killed by the signal, it exits non-zero
	case <-time.After(20 * time.Second):
		t.Fatalf("serve still running 20 s after a second SIGTERM (drain_timeout 10m); logs:\n%s", logs())
	}
}
