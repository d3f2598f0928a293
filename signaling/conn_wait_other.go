//go:build !unix

package signaling

import "syscall"

// waitReadable returns at once: the reader then waits in the WebSocket
// library's own read.
func waitReadable(syscall.RawConn) {}
