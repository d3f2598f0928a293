package signaling

import (
	"bufio"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
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
