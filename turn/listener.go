package turn

import (
	"net"
	"sync"
)

// tcpListener tracks the TURN-over-TCP connections it accepts, so that
// Close ends them too: pion closes the listener but leaves accepted
// connections (and their read loops) to their clients. The connections
// count the peers' bytes pion passes on to their clients, as
// clientPacketConn does over UDP.
type tcpListener struct {
	net.Listener
	led *ledger // immutable

	mu     sync.Mutex
	conns  map[net.Conn]struct{} // guarded by mu
	closed bool                  // guarded by mu
}

func newTCPListener(l net.Listener, led *ledger) *tcpListener {
	return &tcpListener{Listener: l, led: led, conns: make(map[net.Conn]struct{})}
}

// Accept returns the next connection, tracked until it closes.
func (l *tcpListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	tc := &trackedConn{Conn: c, l: l}
	l.conns[tc] = struct{}{}
	return tc, nil
}

// Close closes the listener and every connection it accepted.
func (l *tcpListener) Close() error {
	l.mu.Lock()
	l.closed = true
	conns := make([]net.Conn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	err := l.Listener.Close()
	for _, c := range conns {
		_ = c.Close()
	}
	return err
}

// trackedConn forgets itself in its listener when closed.
type trackedConn struct {
	net.Conn
	l    *tcpListener
	once sync.Once
}

// Write sends one whole message to the client (pion writes no less).
func (c *trackedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err == nil {
		c.l.led.countToClient(p)
	}
	return n, err
}

// Close closes the connection and untracks it.
func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}
