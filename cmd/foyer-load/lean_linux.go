package main

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The lean client: the devices of the reconnect scenario (and of idle with
// --client lean), which only connect, say hello, answer pings and stay,
// held by one event loop per worker on raw non-blocking sockets. A
// connection through Go's net package and a WebSocket library costs the
// tool about 21 system calls and two goroutines (the dial and the read
// loop); here it costs 8 (socket, bind, connect, epoll_ctl, the upgrade's
// write and read, hello's write, welcome's read) and no goroutine. In a
// reconnect storm the tool shares the server's two cores, and with the
// library client it used more CPU than the server did (docs/benchmarks.md,
// "The lean client"). Failures are named by classifyNetError, as the
// library client's are.
//
// It speaks just what those devices need of RFC 6455: the client
// handshake (the accept key checked), masked text frames out, and
// unmasked text, ping and close frames in.

// leanAvailable: this system has the lean client (--client auto takes it).
const leanAvailable = true

// leanFleet holds a worker's connections on one event loop goroutine. Every
// field below the channels is the loop's own.
type leanFleet struct {
	cmds chan func() // run on the loop
	wake int         // eventfd: a command waits
	ep   int

	conns   []*leanConn
	byFD    map[int32]*leanConn
	conc    int
	timeout time.Duration
	batch   *leanBatch
	buf     []byte
	lost    map[string]int
	stopped bool
	// The handshake, the same for every connection of the worker: the
	// request (per node) and the accept key the server must answer.
	accept string
}

// leanConn is one device's connection.
type leanConn struct {
	dev     device
	src     [4]byte
	dst     unix.SockaddrInet4
	request []byte // the upgrade request for its node
	fd      int    // -1: closed
	state   uint8
	attempt int
	started time.Time // of this attempt
	due     time.Time // of the next attempt, after a failure
	token   string    // this attempt's hello: the device or the resume token
	resume  string    // resume_token of the last welcome
	in      []byte    // received bytes not yet a whole frame or response
	dropped bool      // the tool closed it on purpose
}

const (
	leanIdle       uint8 = iota // connected and welcomed, or never connected
	leanConnecting              // connect sent
	leanUpgrading               // upgrade request sent
	leanHello                   // hello sent
	leanWaiting                 // failed; retried at due
)

// leanBatch is a connectAll in progress.
type leanBatch struct {
	todo    []*leanConn
	next    int // todo[next:] not started
	flying  []*leanConn
	waiting []*leanConn
	resume  bool
	base    time.Time
	res     connectResults
	done    chan connectResults
	left    int // not yet connected nor given up
}

// webSocketGUID is RFC 6455's, for the accept key.
const webSocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// newLeanFleet readies clients' connections (none open yet) and starts the
// loop.
func newLeanFleet(clients []*client, conc int, timeout time.Duration) (*leanFleet, error) {
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	sum := sha1.Sum([]byte(key + webSocketGUID))
	f := &leanFleet{
		cmds: make(chan func(), 1), byFD: make(map[int32]*leanConn), conc: conc, timeout: timeout,
		buf: make([]byte, 16<<10), lost: make(map[string]int),
		accept: "\r\nSec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(sum[:]) + "\r\n",
	}
	requests := make(map[string][]byte)
	for _, c := range clients {
		u, err := url.Parse(c.url)
		if err != nil {
			return nil, err
		}
		ap, err := sockaddrOf(u.Host)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.url, err)
		}
		req, ok := requests[c.url]
		if !ok {
			req = []byte("GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host +
				"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
				"\r\nSec-WebSocket-Version: 13\r\n\r\n")
			requests[c.url] = req
		}
		lc := &leanConn{dev: c.dev, dst: ap, request: req, fd: -1}
		copy(lc.src[:], c.src.To4())
		f.conns = append(f.conns, lc)
	}
	var err error
	if f.ep, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, err
	}
	if f.wake, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		unix.Close(f.ep)
		return nil, err
	}
	if err := unix.EpollCtl(f.ep, unix.EPOLL_CTL_ADD, f.wake, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(f.wake)}); err != nil {
		unix.Close(f.ep)
		unix.Close(f.wake)
		return nil, err
	}
	go f.loop()
	return f, nil
}

// sockaddrOf is the socket address of a URL host ("127.0.0.1:8080"), without DNS.
func sockaddrOf(host string) (unix.SockaddrInet4, error) {
	h, p, err := net.SplitHostPort(host)
	if err != nil {
		return unix.SockaddrInet4{}, err
	}
	ip := net.ParseIP(h).To4()
	port, perr := strconv.Atoi(p)
	if ip == nil || perr != nil {
		return unix.SockaddrInet4{}, errors.New("the lean client needs an IPv4 address and a port")
	}
	sa := unix.SockaddrInet4{Port: port}
	copy(sa.Addr[:], ip)
	return sa, nil
}

// run runs fn on the loop and waits for it.
func (f *leanFleet) run(fn func()) {
	done := make(chan struct{})
	f.cmds <- func() { fn(); close(done) }
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	_, _ = unix.Write(f.wake, one[:])
	<-done
}

// connectAll connects every connection not connected, f.conc at a time,
// with connectAll's attempts and backoff; see worker.connectAll.
func (f *leanFleet) connectAll(resume bool, base time.Time) connectResults {
	done := make(chan connectResults, 1)
	f.run(func() {
		b := &leanBatch{resume: resume, base: base, done: done,
			res: connectResults{errors: map[string]int{}, start: time.Now()}}
		for _, c := range f.conns {
			if c.fd < 0 {
				b.todo = append(b.todo, c)
			}
		}
		b.left = len(b.todo)
		f.batch = b
		f.progress(time.Now())
	})
	return <-done
}

// dropAll closes every connection at once, without a close frame, like
// phones losing their network.
func (f *leanFleet) dropAll() {
	f.run(func() {
		for _, c := range f.conns {
			if c.fd >= 0 {
				c.dropped = true
				f.close(c)
			}
		}
	})
}

// stop closes every connection, ends the loop and releases its
// descriptors. The fleet is unusable after.
func (f *leanFleet) stop() {
	f.dropAll()
	f.run(func() { f.stopped = true })
}

// lostCounts counts connections that ended without the tool dropping them.
func (f *leanFleet) lostCounts() map[string]int {
	out := map[string]int{}
	f.run(func() {
		for k, v := range f.lost {
			out[k] = v
		}
	})
	return out
}

// loop is the fleet's goroutine: events, commands, deadlines.
func (f *leanFleet) loop() {
	events := make([]unix.EpollEvent, 256)
	for {
		wait := -1
		if b := f.batch; b != nil {
			wait = 50 // deadlines and retries are checked this often
		}
		n, err := unix.EpollWait(f.ep, events, wait)
		if err != nil && !errors.Is(err, unix.EINTR) {
			panic(fmt.Sprintf("epoll_wait: %v", err)) // the worker cannot go on without its loop
		}
		now := time.Now()
		woke := false
		for _, ev := range events[:max(n, 0)] {
			if int(ev.Fd) == f.wake {
				woke = true
				continue
			}
			if c := f.byFD[ev.Fd]; c != nil {
				f.event(c, ev.Events, now)
			}
		}
		// Commands run after the batch's socket events: a drop and a
		// connect close sockets and open new ones with the same numbers,
		// and an event of this batch for a closed socket must not reach
		// the new one.
		if woke {
			var b [8]byte
			_, _ = unix.Read(f.wake, b[:])
			for drained := false; !drained; {
				select {
				case fn := <-f.cmds:
					fn()
				default:
					drained = true
				}
			}
			if f.stopped {
				_ = unix.Close(f.ep)
				_ = unix.Close(f.wake)
				return
			}
		}
		if f.batch != nil {
			f.progress(now)
		}
	}
}

// progress gives up attempts past their deadline, starts due retries and
// new connections up to f.conc, and ends the batch when nothing is left.
func (f *leanFleet) progress(now time.Time) {
	b := f.batch
	flying := b.flying[:0]
	for _, c := range b.flying {
		switch {
		case c.state == leanIdle || c.state == leanWaiting:
			// connected or failed since: not flying
		case now.Sub(c.started) > f.timeout:
			f.fail(c, leanStage(c.state)+": timeout", now)
		default:
			flying = append(flying, c)
		}
	}
	b.flying = flying
	waiting, n := b.waiting[:0], len(b.waiting)
	for _, c := range b.waiting {
		if c.state == leanWaiting && !now.Before(c.due) && len(b.flying) < f.conc {
			f.start(c, now)
		} else if c.state == leanWaiting {
			waiting = append(waiting, c)
		}
	}
	// A retry that failed at once (no socket, no bind) was appended to
	// b.waiting by failNoSocket while it was being filtered: keep it.
	b.waiting = append(waiting, b.waiting[n:]...)
	for len(b.flying) < f.conc && b.next < len(b.todo) {
		c := b.todo[b.next]
		b.next++
		c.attempt = 0
		c.token = c.dev.Token
		if b.resume {
			c.token = ""
		}
		f.start(c, now)
	}
	if b.left == 0 {
		b.res.end = now
		f.batch = nil
		b.done <- b.res
	}
}

// leanStage names a state as the library client's errors name where they
// happened.
func leanStage(s uint8) string {
	switch s {
	case leanConnecting, leanUpgrading:
		return "dial"
	case leanHello:
		return "welcome"
	}
	return "read"
}

// start opens one attempt's socket and connects it.
func (f *leanFleet) start(c *leanConn, now time.Time) {
	b := f.batch
	c.attempt++
	c.started, c.in, c.dropped = now, c.in[:0], false
	if c.token == "" && c.attempt > 1 {
		c.token = c.dev.Token // a resume token is single-use
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		f.failNoSocket(c, classifyNetError("dial", err), now)
		return
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: c.src}); err != nil {
		unix.Close(fd)
		f.failNoSocket(c, classifyNetError("dial", err), now)
		return
	}
	c.fd = fd
	c.state = leanConnecting
	f.byFD[int32(fd)] = c
	b.flying = append(b.flying, c)
	connErr := unix.Connect(fd, &c.dst)
	if connErr != nil && !errors.Is(connErr, unix.EINPROGRESS) {
		f.fail(c, classifyNetError("dial", connErr), now)
		return
	}
	// Edge-triggered, registered once: writable when connected, then
	// readable as data comes. A read that fills less than the buffer
	// has taken all there was, and new data raises a new edge.
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(fd)}
	if err := unix.EpollCtl(f.ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		f.fail(c, "dial: other (epoll_ctl)", now)
		return
	}
	if connErr == nil { // connected at once
		f.upgrade(c, now)
	}
}

// upgrade writes the upgrade request on a connected socket.
func (f *leanFleet) upgrade(c *leanConn, now time.Time) {
	if _, err := unix.Write(c.fd, c.request); err != nil {
		f.fail(c, classifyNetError("dial", err), now)
		return
	}
	c.state = leanUpgrading
}

// event handles what epoll reported for c.
func (f *leanFleet) event(c *leanConn, ev uint32, now time.Time) {
	if c.state == leanConnecting {
		if ev&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
			class := "dial: connection refused"
			if errno, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_ERROR); err == nil && errno != 0 {
				class = classifyNetError("dial", unix.Errno(errno))
			}
			f.fail(c, class, now)
			return
		}
		if ev&unix.EPOLLOUT != 0 {
			f.upgrade(c, now)
			if c.fd < 0 {
				return // the write failed, and the attempt with it
			}
		}
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) == 0 {
		return
	}
	// Edge-triggered: read until a read comes back short, and on past it
	// when the peer has closed too (the end may have come with the data,
	// and raises no new edge).
	for {
		n, err := unix.Read(c.fd, f.buf)
		if errors.Is(err, unix.EAGAIN) {
			return
		}
		if n <= 0 {
			where := leanStage(c.state)
			class := where + ": eof"
			if err != nil {
				class = classifyNetError(where, err)
			} else if c.state == leanHello || c.state == leanIdle {
				// After the upgrade the library reports an end without a
				// close frame as gorilla/websocket's abnormal closure.
				class = where + ": close 1006"
			}
			f.ended(c, class, now)
			return
		}
		data := f.buf[:n]
		if len(c.in) > 0 {
			c.in = append(c.in, data...)
			data = c.in
		}
		rest, class := f.consume(c, data, now)
		if class != "" {
			f.ended(c, class, now)
			return
		}
		c.in = append(c.in[:0], rest...)
		if n < len(f.buf) && ev&(unix.EPOLLRDHUP|unix.EPOLLHUP) == 0 {
			return
		}
	}
}

// consume takes the upgrade response and whole frames off data and returns
// what is left (a part), or why the connection must end.
func (f *leanFleet) consume(c *leanConn, data []byte, now time.Time) (rest []byte, class string) {
	if c.state == leanUpgrading {
		end := strings.Index(string(data), "\r\n\r\n")
		if end < 0 {
			return data, ""
		}
		head := string(data[:end+2])
		if !strings.HasPrefix(head, "HTTP/1.1 101 ") {
			return nil, "dial: bad handshake (HTTP status)"
		}
		if !strings.Contains(head, f.accept) {
			return nil, "dial: bad handshake (accept key)"
		}
		if _, err := unix.Write(c.fd, c.hello()); err != nil {
			return nil, classifyNetError("hello", err)
		}
		c.state = leanHello
		data = data[end+4:]
	}
	for {
		op, payload, n, ok := serverFrame(data)
		if !ok {
			if n < 0 {
				return nil, leanStage(c.state) + ": bad frame"
			}
			return data, ""
		}
		data = data[n:]
		switch op {
		case 0x1: // text
			if c.state != leanHello {
				continue // no message is expected of an idle device; read and dropped
			}
			var m inbound
			if json.Unmarshal(payload, &m) != nil || m.Type != "welcome" {
				continue // nothing comes before welcome today; tolerate it anyway
			}
			c.resume = m.ResumeToken
			f.welcomed(c, now)
		case 0x8: // close
			code := 1005
			if len(payload) >= 2 {
				code = int(binary.BigEndian.Uint16(payload))
			}
			return nil, fmt.Sprintf("%s: close %d", leanStage(c.state), code)
		case 0x9: // ping: pong with the same payload
			_, _ = unix.Write(c.fd, maskedFrame(0xA, payload))
		}
	}
}

// serverFrame parses one unmasked frame at the start of b: its opcode,
// payload and length; ok false when b holds only part of one, and n < 0
// for one no server may send (masked, or longer than 64 KiB).
func serverFrame(b []byte) (op byte, payload []byte, n int, ok bool) {
	if len(b) < 2 {
		return 0, nil, 0, false
	}
	if b[1]&0x80 != 0 {
		return 0, nil, -1, false
	}
	size, head := int(b[1]&0x7f), 2
	switch size {
	case 126:
		if len(b) < 4 {
			return 0, nil, 0, false
		}
		size, head = int(binary.BigEndian.Uint16(b[2:4])), 4
	case 127:
		return 0, nil, -1, false
	}
	if len(b) < head+size {
		return 0, nil, 0, false
	}
	return b[0] & 0x0f, b[head : head+size], head + size, true
}

// maskedFrame is a whole client frame of opcode op (payload under 64 KiB).
func maskedFrame(op byte, payload []byte) []byte {
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	f := make([]byte, 0, 8+len(payload))
	f = append(f, 0x80|op)
	if len(payload) < 126 {
		f = append(f, 0x80|byte(len(payload)))
	} else {
		f = append(f, 0x80|126, byte(len(payload)>>8), byte(len(payload)))
	}
	f = append(f, mask[:]...)
	for i, v := range payload {
		f = append(f, v^mask[i&3])
	}
	return f
}

// hello is c's masked hello frame: with this attempt's token, or with the
// last welcome's resume token when it has none.
func (c *leanConn) hello() []byte {
	h := hello{Type: "hello", Version: 1, Token: c.token}
	if c.token == "" {
		h.ResumeToken = c.resume
	}
	p, _ := json.Marshal(h)
	return maskedFrame(0x1, p)
}

// welcomed counts a connection in, with connectAll's timing.
func (f *leanFleet) welcomed(c *leanConn, now time.Time) {
	c.state = leanIdle
	b := f.batch
	if b == nil {
		return
	}
	took := now.Sub(c.started)
	if !b.base.IsZero() {
		took = now.Sub(b.base)
	}
	b.res.took = append(b.res.took, int64(took))
	if now.After(b.res.lastOK) {
		b.res.lastOK = now
	}
	b.left--
}

// ended handles a connection that ended: an attempt that failed, or a
// connected device the server closed.
func (f *leanFleet) ended(c *leanConn, class string, now time.Time) {
	if c.state == leanIdle {
		f.close(c)
		if !c.dropped {
			f.lost[class]++
		}
		return
	}
	f.fail(c, class, now)
}

// fail counts a failed attempt and closes it; a later attempt waits for
// its backoff, as in worker.connectAll.
func (f *leanFleet) fail(c *leanConn, class string, now time.Time) {
	f.close(c)
	f.failNoSocket(c, class, now)
}

func (f *leanFleet) failNoSocket(c *leanConn, class string, now time.Time) {
	b := f.batch
	b.res.errors[class]++
	if c.attempt >= dialAttempts {
		c.state = leanIdle
		b.left--
		return
	}
	c.state = leanWaiting
	c.due = now.Add(dialBackoff << (c.attempt - 1))
	b.waiting = append(b.waiting, c)
}

// close closes c's socket, which also takes it out of the epoll set.
func (f *leanFleet) close(c *leanConn) {
	if c.fd < 0 {
		return
	}
	delete(f.byFD, int32(c.fd))
	_ = unix.Close(c.fd)
	c.fd = -1
}
