package signaling

import (
	"testing"
	"time"

	"github.com/foyer-intercom/foyer/directory"
)

// TestResumeTokensExpireOnConnect: a closed connection's resume token
// works for resumeTTL and is forgotten after it, also when no other
// connection closes meanwhile: a connect forgets expired tokens as a close
// does, so a node that only sees its devices reconnect does not keep every
// generation of their tokens.
func TestResumeTokensExpireOnConnect(t *testing.T) {
	r := newResumeTokens()
	t0 := time.Unix(1_800_000_000, 0)
	conns := make([]*Conn, 3)
	toks := make([]string, len(conns))
	for i := range conns {
		conns[i] = &Conn{token: directory.HashToken("device-" + string(rune('a'+i)))}
		toks[i] = r.issue(conns[i], t0)
	}
	for _, c := range conns {
		r.closed(c, t0)
	}
	if dev, ok := r.take(toks[0], t0.Add(resumeTTL-time.Second)); !ok || dev != conns[0].token {
		t.Fatalf("a token taken within its %v after the close: %v, %v", resumeTTL, dev, ok)
	}
	r.issue(&Conn{token: directory.HashToken("device-new")}, t0.Add(resumeTTL+time.Second))
	r.mu.Lock()
	kept, queued := len(r.byHash), len(r.expiring)
	r.mu.Unlock()
	if kept != 1 || queued != 0 {
		t.Fatalf("after a connect %v past the closes, %d tokens kept and %d queued to expire, want the new one only", resumeTTL, kept, queued)
	}
	if _, ok := r.take(toks[1], t0.Add(resumeTTL+time.Second)); ok {
		t.Fatal("an expired token was taken")
	}
}

// TestResumeTokenBesideToken: a hello with both a token and a resume token
// authenticates with the token and leaves the resume token unspent, to
// resume with later.
func TestResumeTokenBesideToken(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	first := ts.connectTo(t, 0, "anna-phone") // resume tokens are a node's own
	resume := first.welcome["resume_token"]
	both := &client{t: t, ws: ts.dialRaw(t, nil), name: "anna-phone"}
	both.send(map[string]any{"type": "hello", "version": 1, "token": ts.tokens["anna-phone"], "resume_token": resume})
	both.expect("welcome")
	r := &client{t: t, ws: ts.dialRaw(t, nil), name: "resumed"}
	r.send(map[string]any{"type": "hello", "version": 1, "resume_token": resume})
	if got := r.expect("welcome"); got["device_id"] != first.welcome["device_id"] {
		t.Fatalf("resumed as %v, want %v", got["device_id"], first.welcome["device_id"])
	}
}

// TestResumeTokenExpires: a closed connection's resume token is refused
// resumeTTL after the close, also when no connect or close has come since
// to forget it.
func TestResumeTokenExpires(t *testing.T) {
	r := newResumeTokens()
	t0 := time.Unix(1_800_000_000, 0)
	c := &Conn{token: directory.HashToken("device-a")}
	tok := r.issue(c, t0)
	r.closed(c, t0)
	if _, ok := r.take(tok, t0.Add(resumeTTL+time.Second)); ok {
		t.Fatalf("a resume token was taken %v after its connection closed", resumeTTL+time.Second)
	}
}

// TestResumeTokenExpiresAfterClose: a connection's close starts its resume
// token's resumeTTL; one that never started it would stay good for as long
// as the node runs.
func TestResumeTokenExpiresAfterClose(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	c := ts.connectTo(t, 0, "anna-phone") // resume tokens are a node's own
	tok := c.welcome["resume_token"].(string)
	_ = c.ws.Close()
	r, hash := ts.hubs[0].resume, directory.HashToken(tok)
	for deadline := time.Now().Add(readTimeout); ; time.Sleep(5 * time.Millisecond) {
		r.mu.Lock()
		expires := r.byHash[hash].expires
		r.mu.Unlock()
		if !expires.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the resume token of a closed connection never started to expire")
		}
	}
	if _, ok := r.take(tok, time.Now().Add(resumeTTL+time.Second)); ok {
		t.Fatalf("the resume token was taken %v after its connection closed", resumeTTL+time.Second)
	}
}
