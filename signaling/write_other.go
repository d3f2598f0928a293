//go:build !linux

package signaling

import (
	"errors"
	"syscall"
)

// directWrites: writeNow is Linux only; elsewhere Send queues every frame
// for the writer goroutine and never calls it.
const directWrites = false

func writeNow(syscall.RawConn, []byte, []byte) (int, error) {
	return 0, errors.ErrUnsupported
}
