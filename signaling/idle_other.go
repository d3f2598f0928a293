//go:build !linux

package signaling

// idlePoller exists on Linux only (epoll); elsewhere every connection's
// reader waits on its socket on a goroutine of its own.
type idlePoller struct{}

func idle() *idlePoller { return nil }

func (*idlePoller) park(*Conn) bool { return false }
func (*idlePoller) unpark(*Conn)    {}
