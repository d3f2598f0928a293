//go:build !linux

package signaling

import (
	"errors"
	"syscall"
)

// directWriter: writing from the sender's goroutine is Linux only;
// elsewhere Send queues every frame for the writer goroutine.
type directWriter struct{}

func newDirectWriter(any, syscall.RawConn) *directWriter { return nil }

func (*directWriter) write([]byte) ([]byte, int, error) {
	return nil, 0, errors.ErrUnsupported
}

func (*directWriter) writeParts([]byte, []byte) (int, error) {
	return 0, errors.ErrUnsupported
}
