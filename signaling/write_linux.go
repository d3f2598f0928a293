package signaling

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// directWrites: Send may write a frame itself (writeInline, writeNow).
const directWrites = true

// writeNow writes hdr and frame to the socket in one writev(2) that must
// not wait: it returns how many bytes went out (0 when the socket's send
// buffer is full) and an error only for a broken socket.
func writeNow(raw syscall.RawConn, hdr, frame []byte) (int, error) {
	var n int
	var werr error
	err := raw.Write(func(fd uintptr) bool {
		for {
			n, werr = unix.Writev(int(fd), [][]byte{hdr, frame})
			if !errors.Is(werr, unix.EINTR) {
				return true // one attempt: never wait for room here
			}
		}
	})
	if errors.Is(werr, unix.EAGAIN) {
		return 0, nil
	}
	if n < 0 {
		n = 0
	}
	if err != nil {
		return n, err
	}
	return n, werr
}
