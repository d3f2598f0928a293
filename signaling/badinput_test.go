package signaling

import (
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestBadMessages sends malformed and unknown messages on one connection:
// each gets its documented error, the connection stays, and a call placed
// on the same node right after still works end to end.
func TestBadMessages(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	c := ts.connect(t, "anna-phone")
	cases := []struct {
		name, frame, code string
	}{
		{"malformed JSON", `{"type":"answer",`, "bad_request"},
		{"not an object", `[1,2,3]`, "bad_request"},
		{"two objects", `{"type":"ping"}{"type":"ping"}`, "bad_request"},
		{"a stray ]", `{"type":"ping"}]`, "bad_request"},
		{"a stray }", `{"type":"ping"}}`, "bad_request"},
		{"trailing text", `{"type":"ping"} x`, "bad_request"},
		{"missing type", `{"call_id":"x"}`, "bad_request"},
		{"type not a string", `{"type":7}`, "bad_request"},
		{"unknown type", `{"type":"teleport","ref":"u"}`, "unknown_type"},
		{"answer without call_id", `{"type":"answer"}`, "bad_request"},
		{"answer for a call never rung", `{"type":"answer","call_id":"c_x_nothing"}`, "not_found"},
		{"decline without call_id", `{"type":"decline"}`, "bad_request"},
		{"hangup unknown call", `{"type":"hangup","call_id":"nope"}`, "not_found"},
		{"call from an app", `{"type":"call","to":"101"}`, "forbidden"},
		{"pin from an app", `{"type":"pin","code":"4711"}`, "forbidden"},
		{"hello again", `{"type":"hello","token":"x","version":1}`, "bad_request"},
		{"ref too long", `{"type":"ping","ref":"` + strings.Repeat("r", 300) + `"}`, "bad_request"},
		{"sdp for a call never rung", `{"type":"sdp","call_id":"nope","description":{"type":"offer","sdp":"v=0"}}`, "not_found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			if err := c.ws.WriteMessage(websocket.TextMessage, []byte(tc.frame)); err != nil {
				t.Fatal(err)
			}
			e := c.expectError(tc.code)
			if e["message"] == "" {
				t.Fatalf("error without a message: %v", e)
			}
		})
	}
	c.t = t
	if err := c.ws.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	c.expectError("bad_request")
	// A binary frame holding a valid message is refused all the same, not
	// read as if it were text.
	if err := c.ws.WriteMessage(websocket.BinaryMessage, []byte(`{"type":"ping","ref":"b"}`)); err != nil {
		t.Fatal(err)
	}
	if e := c.expectError("bad_request"); e["ref"] != nil {
		t.Fatalf("the error for a binary frame carries a ref: %v", e)
	}

	door := ts.connect(t, "front-door")
	door.send(map[string]any{"type": "call", "to": "12a"})
	door.expectError("bad_request")
	door.send(map[string]any{"type": "call", "to": "1234567"}) // seven digits
	door.expectError("bad_request")
	door.send(map[string]any{"type": "call"})
	door.expectError("bad_request")
	door.send(map[string]any{"type": "pin"})
	door.expectError("bad_request")
	callID, _ := door.call("101")
	c.expect("ring")
	c.send(map[string]any{"type": "answer", "call_id": callID})
	c.expect("answered")
	door.expect("answered")
}

// TestOversizedFrame closes a connection sending more than 64 KiB with 1009
// while another connection keeps working, and counts the disconnect as
// such, not as the device going away.
func TestOversizedFrame(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	bystander := ts.connect(t, "bram-phone")
	big := ts.connect(t, "anna-phone")
	m := ts.hubs[ts.nodeOf("anna-phone")].metrics
	peer := m.disconnects.WithLabelValues("peer")
	frame := `{"type":"ping","pad":"` + strings.Repeat("x", 65<<10) + `"}`
	_ = big.ws.WriteMessage(websocket.TextMessage, []byte(frame))
	big.expectClose(websocket.CloseMessageTooBig)
	waitMetric(t, "disconnects (message too big)", counter(m.disconnects.WithLabelValues(CloseTooBig.String())), 1)
	if n := testutil.ToFloat64(peer); n != 0 {
		t.Errorf("%v disconnects counted as peer, want 0", n)
	}

	// Exactly 64 KiB is still accepted.
	ok := ts.connect(t, "anna-tablet")
	exact := `{"type":"ping","pad":"` + strings.Repeat("y", 64<<10-len(`{"type":"ping","pad":""}`)) + `"}`
	if len(exact) != 64<<10 {
		t.Fatalf("frame is %d bytes", len(exact))
	}
	_ = ok.ws.WriteMessage(websocket.TextMessage, []byte(exact))
	ok.expect("pong")

	bystander.pingPong()
}

func TestHandshakeFailures(t *testing.T) {
	ts := newTestServer(t, harborView, Config{HelloTimeout: 300 * time.Millisecond})
	cases := []struct {
		name  string
		hello map[string]any
		code  CloseCode
	}{
		{"bad token", map[string]any{"type": "hello", "token": "fyr_not-a-token", "version": 1}, CloseUnauthorized},
		{"no token", map[string]any{"type": "hello", "version": 1}, CloseUnauthorized},
		{"version 2", map[string]any{"type": "hello", "token": ts.tokens["anna-phone"], "version": 2}, CloseUnsupportedVersion},
		{"not hello first", map[string]any{"type": "call", "to": "101"}, CloseProtocol},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ws := ts.dialRaw(t, nil)
			if err := ws.WriteJSON(tc.hello); err != nil {
				t.Fatal(err)
			}
			expectClose(t, ws, int(tc.code))
		})
	}
	t.Run("malformed hello", func(t *testing.T) {
		ws := ts.dialRaw(t, nil)
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello",`))
		expectClose(t, ws, int(CloseProtocol))
	})
	t.Run("binary hello", func(t *testing.T) {
		ws := ts.dialRaw(t, nil)
		hello := `{"type":"hello","version":1,"token":"` + ts.tokens["anna-phone"] + `"}`
		_ = ws.WriteMessage(websocket.BinaryMessage, []byte(hello))
		expectClose(t, ws, int(CloseProtocol))
	})
	t.Run("no hello in time", func(t *testing.T) {
		ws := ts.dialRaw(t, nil)
		expectClose(t, ws, int(CloseHelloTimeout))
	})
	t.Run("default hello timeout is 10 s", func(t *testing.T) {
		if got := (Config{}).withDefaults().HelloTimeout; got != 10*time.Second {
			t.Fatalf("default hello timeout %v", got)
		}
	})
	// The node still serves everyone after all that.
	c := ts.connect(t, "anna-phone")
	c.pingPong()
}

// TestHelloVersionOptional: a hello without a version, or with version 0,
// is taken as version 1 and welcomed.
func TestHelloVersionOptional(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	for _, hello := range []map[string]any{
		{"type": "hello", "token": ts.tokens["anna-phone"]},
		{"type": "hello", "token": ts.tokens["anna-phone"], "version": 0},
	} {
		c := &client{t: t, ws: ts.dialRaw(t, nil), name: "anna-phone"}
		c.send(hello)
		c.expect("welcome")
		_ = c.ws.Close()
	}
}

// TestHelloWhileDirectoryDown: a hello the directory cannot answer (its
// Redis is gone) closes with 4014, which a device retries with backoff;
// not 4001, which tells it that its token is bad and not to reconnect
// with it: every device saying hello during an outage would stay away.
func TestHelloWhileDirectoryDown(t *testing.T) {
	ts := newNodes(t, harborView, unlimited(), 2, RedisRouterOptions{})
	ts.redis.Stop()
	ws := ts.dialNode(t, 0, nil)
	_ = ws.WriteJSON(map[string]any{"type": "hello", "token": ts.tokens["anna-phone"], "version": 1})
	// The store's Redis client tries each read again before it fails (the
	// refusal comes after about 3 s): a longer bound than for a frame.
	_ = ws.SetReadDeadline(time.Now().Add(3 * readTimeout))
	_, data, err := ws.ReadMessage()
	var ce *websocket.CloseError
	if !asCloseError(err, &ce) || ce.Code != int(CloseInternal) {
		t.Fatalf("want close %d, got %s %v", CloseInternal, data, err)
	}
}
