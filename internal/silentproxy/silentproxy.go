// Package silentproxy is a TCP proxy on loopback for tests, whose
// connections can be made silent as a half-open TCP connection or a
// network path that drops everything leaves them: open, passing nothing in
// either direction, not even a close. Only a health check of the link (the
// pings of a WebSocket, a pub/sub subscription's) can tell.
package silentproxy

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy forwards the connections made to Addr to its target.
type Proxy struct {
	ln net.Listener
	mu sync.Mutex
	// Guarded by mu.
	open  []*atomic.Bool // the silent flag of each connection not yet silenced
	conns []net.Conn     // both sides of every connection, closed when the test ends
}

// Start proxies a listener on 127.0.0.1 to target until the test ends.
func Start(tb testing.TB, target string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{ln: ln}
	var wg sync.WaitGroup
	tb.Cleanup(func() {
		_ = ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				_ = in.Close()
				continue
			}
			silent := new(atomic.Bool)
			p.mu.Lock()
			p.open = append(p.open, silent)
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			wg.Go(func() { pump(out, in, silent) })
			wg.Go(func() { pump(in, out, silent) })
		}
	})
	return p
}

// Addr is the proxy's address, to dial instead of the target's.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Silence makes every connection open now silent: what either side sends
// from now on is read and dropped, a close included, and the connections
// stay open until the test ends. Connections made later pass as before.
func (p *Proxy) Silence() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.open {
		s.Store(true)
	}
	p.open = nil
}

// pump copies src to dst until either fails, dropping everything once the
// connection is silent. A connection that is not silent closes both ways
// when one side closes, as a direct one would.
func pump(dst, src net.Conn, silent *atomic.Bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !silent.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	if !silent.Load() {
		_ = dst.Close()
		_ = src.Close()
	}
}
