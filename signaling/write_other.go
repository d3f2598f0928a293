//go:build !linux

package signaling

import (
	"errors"
	"syscall"
)

// writeNow is Linux only; elsewhere every frame goes through the writer
// goroutine.
func writeNow(syscall.RawConn, []byte, []byte) (int, error) {
	return 0, errors.ErrUnsupported
}
