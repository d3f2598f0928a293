package signaling

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// idlePoller holds idle connections without a goroutine each: a parked
// connection's socket waits in an epoll set of its own (one-shot), and the
// poller starts the connection's reader again when bytes arrive. The epoll
// descriptor itself waits in Go's network poller, so the poller's
// goroutine parks like any other reader rather than holding a thread.
//
// There is one poller per process (idle), started on first use and never
// stopped, like the runtime's own poller.
//
// A readied connection is read by a reader goroutine that has finished
// with another connection and waits for the next (up to maxIdleReaders of
// them wait), or by a new one. A reused reader keeps the stack that reading
// and handling a message grew, where a new goroutine starts small and
// copies its stack as it grows, on every message.
type idlePoller struct {
	epfd int
	file *os.File // the epoll descriptor, registered with Go's poller

	mu     sync.Mutex
	lastID uint32           // guarded by mu
	conns  map[uint32]*Conn // guarded by mu; parked connections by pollID

	ready chan *Conn   // unbuffered: taken only by a reader waiting for it
	idle  atomic.Int32 // readers waiting on ready, or about to
}

// maxIdleReaders bounds the reader goroutines kept waiting for a readied
// connection. More than the cores can run at once gains nothing; each
// holds a stack of a few KB.
const maxIdleReaders = 64

var (
	idleOnce   sync.Once
	idlePolled *idlePoller
)

// idle is the process's poller, started on first use; nil where epoll could
// not be set up (the readers then wait on their sockets, each on its
// goroutine).
func idle() *idlePoller {
	idleOnce.Do(func() {
		p, err := newIdlePoller()
		if err != nil {
			return
		}
		idlePolled = p
		go p.run()
	})
	return idlePolled
}

func newIdlePoller() (*idlePoller, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(fd, true); err != nil { // so os.NewFile hands it to Go's poller
		unix.Close(fd)
		return nil, err
	}
	return &idlePoller{
		epfd:  fd,
		file:  os.NewFile(uintptr(fd), "idle-epoll"),
		conns: make(map[uint32]*Conn),
		ready: make(chan *Conn),
	}, nil
}

// run hands each connection whose socket became readable back to a reader
// goroutine. It waits in Go's poller for the epoll descriptor to be
// readable, then collects events until there are none.
func (p *idlePoller) run() {
	raw, err := p.file.SyscallConn()
	if err != nil {
		return
	}
	events := make([]unix.EpollEvent, 256)
	_ = raw.Read(func(uintptr) bool {
		for {
			n, err := unix.EpollWait(p.epfd, events, 0)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil || n == 0 {
				return false // wait for the descriptor to be readable again
			}
			p.mu.Lock()
			for _, ev := range events[:n] {
				id := uint32(ev.Fd)
				c := p.conns[id]
				if c == nil {
					continue // unparked by its close since
				}
				delete(p.conns, id)
				p.resume(c)
			}
			p.mu.Unlock()
		}
	})
}

// park hands c's socket to the poller and reports whether it did: then the
// caller's goroutine ends, and c.read runs again once the socket has bytes,
// has failed or was closed by the peer. A closing connection is not parked.
func (p *idlePoller) park(c *Conn) bool {
	if p == nil || c.raw == nil {
		return false
	}
	p.mu.Lock()
	if c.isClosing() {
		p.mu.Unlock()
		return false
	}
	op := unix.EPOLL_CTL_MOD
	if c.pollID == 0 {
		p.lastID++
		if p.lastID == 0 {
			p.lastID++
		}
		c.pollID = p.lastID
		op = unix.EPOLL_CTL_ADD
	}
	p.conns[c.pollID] = c // before arming: an event may come at once
	p.mu.Unlock()

	arm := arms.Get().(*armer)
	arm.epfd, arm.op = p.epfd, op
	arm.ev = unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(c.pollID)}
	err := c.raw.Control(arm.call)
	if err == nil {
		err = arm.err
	}
	arm.err = nil
	arms.Put(arm)
	if err == nil {
		return true
	}
	p.mu.Lock()
	_, still := p.conns[c.pollID]
	delete(p.conns, c.pollID)
	p.mu.Unlock()
	// Not parked after all: go on reading here, unless the poller has
	// already started a reader (or the close did, through unpark).
	return !still
}

// armer arms a socket in the poller's epoll set, from inside
// RawConn.Control (which keeps the descriptor open meanwhile). Parking is
// done after every message a connection reads; armers are reused (arms) so
// that it allocates nothing, where a closure over the event would be three
// allocations each time.
type armer struct {
	epfd, op int
	ev       unix.EpollEvent
	err      error
	call     func(fd uintptr) // ctl, bound once
}

var arms = sync.Pool{New: func() any {
	a := &armer{}
	a.call = a.ctl
	return a
}}

// ctl adds or re-arms the socket; one that left the set (its descriptor
// closed and reused since it was added) is added again.
func (a *armer) ctl(fd uintptr) {
	a.err = unix.EpollCtl(a.epfd, a.op, int(fd), &a.ev)
	if errors.Is(a.err, syscall.ENOENT) {
		a.err = unix.EpollCtl(a.epfd, unix.EPOLL_CTL_ADD, int(fd), &a.ev)
	}
}

// unpark takes c back from the poller when it is parked there and starts
// its reader, which then sees the socket close. The closing connection's
// writer calls it before it closes the socket: a parked connection has no
// goroutine to notice, and the socket's close takes it out of the epoll set
// without an event.
func (p *idlePoller) unpark(c *Conn) {
	if p == nil {
		return
	}
	p.mu.Lock()
	_, parked := p.conns[c.pollID]
	delete(p.conns, c.pollID)
	p.mu.Unlock()
	if parked {
		p.resume(c)
	}
}

// resume runs c's reader on a waiting reader goroutine, or on a new one
// when none waits.
func (p *idlePoller) resume(c *Conn) {
	select {
	case p.ready <- c:
	default:
		go p.reader(c)
	}
}

// reader reads c, then waits for another readied connection, unless
// maxIdleReaders readers wait already.
func (p *idlePoller) reader(c *Conn) {
	for {
		c.read(true)
		if p.idle.Add(1) > maxIdleReaders {
			p.idle.Add(-1)
			return
		}
		c = <-p.ready
		p.idle.Add(-1)
	}
}
