package signaling

import (
	"bufio"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/foyer-intercom/foyer/directory"
)

// TestDirectWrite: a frame written from the sender's goroutine arrives
// whole behind its header, and writing it allocates nothing (a fan-out
// writes one per device).
func TestDirectWrite(t *testing.T) {
	client, server, raw := tcpPair(t)
	w := newDirectWriter(server, raw)
	frame := []byte(`{"type":"ring","call_id":"c_1"}`)

	hdr, n, err := w.write(frame)
	if err != nil || n != len(hdr)+len(frame) {
		t.Fatalf("write = %d bytes, %v; want %d", n, err, len(hdr)+len(frame))
	}
	got := make([]byte, n)
	r := bufio.NewReader(client)
	if _, err := io.ReadFull(r, got); err != nil {
		t.Fatal(err)
	}
	if want := append(frameHeader(nil, len(frame)), frame...); string(got) != string(want) {
		t.Fatalf("read %q, want %q", got, want)
	}

	// A write deadline left on the socket by an earlier write (a writer
	// goroutine's, the library's) that has passed since does not stop a
	// direct write, which never waits.
	if err := server.SetWriteDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, n, err := w.write(frame); err != nil || n != len(hdr)+len(frame) {
		t.Fatalf("write after a write deadline passed = %d bytes, %v; want %d", n, err, len(hdr)+len(frame))
	}
	if _, err := io.ReadFull(r, got); err != nil {
		t.Fatal(err)
	}

	done := make(chan struct{})
	go func() { defer close(done); _, _ = io.Copy(io.Discard, r) }()
	if a := testing.AllocsPerRun(200, func() {
		if _, _, err := w.write(frame); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("a direct write allocates %v times, want 0", a)
	}
	_ = client.Close()
	<-done
}

// tcpPair returns both ends of a loopback TCP connection, and the server
// end's descriptor; they close when the test ends.
func tcpPair(t *testing.T) (client, server net.Conn, raw syscall.RawConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Close() })
	if raw, err = server.(*net.TCPConn).SyscallConn(); err != nil {
		t.Fatal(err)
	}
	return client, server, raw
}

// TestPingWrittenInline: a due heartbeat ping to a connection with nothing
// queued is written by the heartbeat timer's goroutine itself, allocating
// nothing (the writer goroutine wrote it with the library's WriteControl,
// which sets a timer and a write deadline for each ping), the writing turn
// is given back, and the client reads every one as a ping.
func TestPingWrittenInline(t *testing.T) {
	ts := newTestServer(t, harborView, Config{Heartbeat: time.Minute})
	c := ts.connect(t, "anna-phone")
	var pings atomic.Int64
	c.ws.SetPingHandler(func(string) error { pings.Add(1); return nil })
	_ = c.ws.SetReadDeadline(time.Time{}) // left by the welcome's read
	reading := make(chan struct{})
	go func() {
		defer close(reading)
		for {
			if _, _, err := c.ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	sc := ts.hubs[ts.nodeOf("anna-phone")].router.Local(directory.DeviceID(c.welcome["device_id"].(string)))
	// The welcome's writer gives the writing turn back on its own
	// goroutine; a ping due before that is left to it.
	for deadline := time.Now().Add(readTimeout); ; time.Sleep(time.Millisecond) {
		sc.qmu.Lock()
		writing := sc.writing
		sc.qmu.Unlock()
		if !writing {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the welcome's writer still holds the writing turn")
		}
	}
	ticks := 0
	if a := testing.AllocsPerRun(100, func() {
		sc.qmu.Lock()
		sc.pingAt = time.Time{} // due
		sc.qmu.Unlock()
		sc.pingTick()
		ticks++
	}); a != 0 {
		t.Errorf("a heartbeat ping allocates %v times, want 0", a)
	}
	for deadline := time.Now().Add(readTimeout); pings.Load() != int64(ticks); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the client read %d pings, want %d", pings.Load(), ticks)
		}
	}
	sc.qmu.Lock()
	writing := sc.writing
	sc.qmu.Unlock()
	if writing {
		t.Error("the writing turn was not given back after the pings")
	}
	_ = c.ws.Close()
	<-reading
}
