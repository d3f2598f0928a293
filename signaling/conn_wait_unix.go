//go:build unix

package signaling

import "syscall"

// waitReadable returns once the socket has bytes to read, has failed or
// closed, or its read deadline has passed, without taking any bytes: a
// one-byte MSG_PEEK that must not block, retried by the runtime's poller
// each time the socket becomes readable.
func waitReadable(raw syscall.RawConn) {
	var peek [1]byte
	_ = raw.Read(func(fd uintptr) bool {
		for {
			_, _, err := syscall.Recvfrom(int(fd), peek[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			if err == syscall.EINTR {
				continue
			}
			return err != syscall.EAGAIN // bytes, end of stream or an error: the read sees it
		}
	})
}
