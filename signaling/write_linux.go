package signaling

import (
	"errors"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// directWriter writes a connection's frames from their senders' goroutines
// (writeInline): header and frame in one writev(2) that must not wait. Only
// the sender holding the connection's writing turn uses it, so its fields
// need no lock; its callback and buffers live as long as the connection,
// so a write allocates nothing.
type directWriter struct {
	raw   syscall.RawConn
	conn  deadliner // the same socket, to clear a write deadline that has passed
	hdr   [10]byte
	iov   [2]unix.Iovec
	n     int
	errno syscall.Errno
	call  func(fd uintptr) bool // writev, bound once
}

// deadliner is the part of net.Conn directWriter uses.
type deadliner interface{ SetWriteDeadline(time.Time) error }

// newDirectWriter returns the direct writer of a socket (conn, and raw its
// descriptor); nil where frames can only be queued for the writer goroutine
// (raw is nil, or not Linux).
func newDirectWriter(conn deadliner, raw syscall.RawConn) *directWriter {
	if raw == nil {
		return nil
	}
	w := &directWriter{raw: raw, conn: conn}
	w.call = w.writev
	return w
}

// write writes frame behind its header and returns the header, how many
// bytes of the two went out (0 when the socket's send buffer is full) and
// an error only for a broken socket. The header stays valid until the next
// write.
func (w *directWriter) write(frame []byte) (hdr []byte, n int, err error) {
	hdr = frameHeader(w.hdr[:0], len(frame))
	n, err = w.writeParts(hdr, frame)
	return hdr, n, err
}

// writeParts writes head and body in one writev that does not wait, and
// returns how many bytes of the two went out, as write does.
func (w *directWriter) writeParts(head, body []byte) (n int, err error) {
	w.iov[0].Base, w.iov[1].Base = unsafe.SliceData(head), unsafe.SliceData(body)
	w.iov[0].SetLen(len(head))
	w.iov[1].SetLen(len(body))
	w.n, w.errno = 0, 0
	err = w.raw.Write(w.call)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// A write deadline that a writer goroutine or the WebSocket library
		// set for an earlier write has passed, and Go refuses every write
		// on the socket until it is changed: this one never waits, so it
		// needs none. (Idle connections met this at their first frame more
		// than writeWait after their last written by a goroutine, and every
		// such frame went to a writer goroutine.)
		_ = w.conn.SetWriteDeadline(time.Time{})
		err = w.raw.Write(w.call)
	}
	w.iov[0].Base, w.iov[1].Base = nil, nil // the bytes are the caller's again
	switch {
	case err != nil:
		return w.n, err
	case w.errno == unix.EAGAIN:
		return 0, nil
	case w.errno != 0:
		return 0, w.errno
	}
	return w.n, nil
}

// writev is the one attempt of write: never wait for room here.
func (w *directWriter) writev(fd uintptr) bool {
	for {
		n, _, errno := unix.Syscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&w.iov[0])), uintptr(len(w.iov)))
		if errno != unix.EINTR {
			w.n, w.errno = int(n), errno
			if errno != 0 {
				w.n = 0
			}
			return true
		}
	}
}
