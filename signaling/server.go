package signaling

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/jsonarray"
)

// resumeTTL is how long after a connection closes its resume token still
// authenticates a hello: long enough for a phone to switch networks.
const resumeTTL = 2 * time.Minute

// ServeHTTP upgrades GET /v1/signal, runs the hello handshake and serves
// the connection until it is idle: then (on Linux) its socket is parked
// with the idle poller and the HTTP server's goroutine ends; an idle
// connection holds no goroutine.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	draining := h.draining
	if !draining {
		h.wg.Add(1)
	}
	h.mu.Unlock()
	if draining {
		http.Error(w, "shutting down; connect to another node", http.StatusServiceUnavailable)
		return
	}
	c := h.accept(w, r)
	if c == nil {
		h.wg.Done()
		return
	}
	h.serve(c)
}

// accept upgrades the request and runs the handshake. It returns nil when
// the connection was refused (and answered).
func (h *Hub) accept(w http.ResponseWriter, r *http.Request) *Conn {
	if h.upgrades != nil {
		if ok, wait := h.upgrades.allow(r, time.Now()); !ok {
			h.metrics.rateLimited.WithLabelValues("upgrade").Inc()
			w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
			http.Error(w, "too many connections from your address; retry later", http.StatusTooManyRequests)
			return nil
		}
	}
	own := &ownReader{ResponseWriter: w}
	ws, err := h.upgrader.Upgrade(own, r, nil)
	if err != nil {
		return nil // the upgrader has answered with an HTTP error
	}
	ws.SetReadLimit(maxMessageSize)
	c, code := h.handshake(r, ws)
	if c == nil {
		h.metrics.handshakeFailures.WithLabelValues(disconnectReason(code)).Inc()
		h.log.Debug("handshake refused", "code", int(code), "reason", code.String(), "remote", r.RemoteAddr)
		writeClose(ws, code)
		_ = ws.Close()
		return nil
	}
	c.br = own.br
	if sc, ok := ws.UnderlyingConn().(syscall.Conn); ok && c.br != nil {
		c.raw, _ = sc.SyscallConn()
		c.direct = newDirectWriter(ws.UnderlyingConn(), c.raw)
	}
	return c
}

// handshake reads hello and authenticates it. It returns the new connection,
// or nil and the close code to send or count (0: the client went away;
// CloseTooBig: the library sent it).
//
// The hello timeout bounds the whole of it: the hello's arrival and the
// store's two reads that answer it. A call's reads fail after the shorter
// request timeout, so that a door station hears at once that Redis is
// away; a hello instead waits out a store that is merely busy, as a
// shared Redis is while a whole node's devices reconnect at once. Failing
// them would only send them back with their backoff, into the same storm.
// A Redis that is away still fails a hello within its client's own dial
// and read timeouts.
func (h *Hub) handshake(r *http.Request, ws *websocket.Conn) (*Conn, CloseCode) {
	deadline := time.Now().Add(h.cfg.HelloTimeout)
	_ = ws.SetReadDeadline(deadline)
	kind, frame, err := ws.ReadMessage()
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, CloseHelloTimeout
		}
		return nil, readFailure(err)
	}
	msg, err := DecodeInbound(frame)
	if kind != websocket.TextMessage || err != nil || msg.Type != TypeHello {
		return nil, CloseProtocol
	}
	// The first message is read here, not by dispatch, which counts the
	// others by type: counted the same, hellos beside welcomes sent show
	// how many handshakes fail.
	h.metrics.messagesIn.WithLabelValues(TypeHello).Inc()
	if msg.Version != 0 && msg.Version != ProtocolVersion {
		return nil, CloseUnsupportedVersion
	}
	ctx, cancel := context.WithDeadline(r.Context(), deadline)
	defer cancel()
	tok := msg.Token
	if tok == "" {
		var ok bool
		if tok, ok = bearerToken(r.Header.Get("Authorization")); !ok {
			return nil, CloseUnauthorized
		}
	}
	var hash directory.TokenHash
	switch {
	case tok != "":
		hash = directory.HashToken(tok)
	case msg.ResumeToken != "":
		var ok bool
		if hash, ok = h.resume.take(msg.ResumeToken, time.Now()); !ok {
			return nil, CloseUnauthorized
		}
	default:
		return nil, CloseUnauthorized
	}
	d, err := h.store.DeviceByToken(ctx, hash)
	if errors.Is(err, directory.ErrNotFound) {
		return nil, CloseUnauthorized
	}
	if err != nil {
		h.log.Warn("authenticating a device failed", "err", err)
		return nil, CloseInternal
	}
	targets, err := h.store.Targets(ctx, d)
	if err != nil {
		h.log.Warn("reading a device's call IDs failed", "device_id", d.ID, "err", err)
		return nil, CloseInternal
	}
	c := newConn(h, ws, d, hash, targets, deviceSites(d, targets))
	c.reply(Welcome{
		Type:        TypeWelcome,
		Ref:         msg.Ref,
		DeviceID:    d.ID,
		Kind:        d.Kind,
		SiteIDs:     c.sites,
		ICEServers:  jsonarray.Of(h.ice(d)),
		HeartbeatS:  int(h.cfg.Heartbeat / time.Second),
		ResumeToken: h.resume.issue(c, time.Now()),
	})
	return c, 0
}

// deviceSites lists the sites a device belongs to, for welcome.site_ids.
func deviceSites(d directory.Device, targets []directory.Target) []directory.SiteID {
	sites := []directory.SiteID{}
	seen := map[directory.SiteID]bool{}
	add := func(s directory.SiteID) {
		if s != "" && !seen[s] {
			seen[s] = true
			sites = append(sites, s)
		}
	}
	add(d.Site)
	if d.Kind == directory.KindDoorStation {
		for _, s := range d.CallSites {
			add(s)
		}
	}
	for _, t := range targets {
		add(t.Site)
	}
	return sites
}

// serve runs an authenticated connection: attach, push state, then read
// (Conn.read), which parks the connection when it is idle and, when it
// closes, ends serving it (served).
func (h *Hub) serve(c *Conn) {
	ctx := context.Background()
	prev, err := h.router.Attach(ctx, c)
	if err != nil {
		c.logger().Warn("registering the connection failed", "err", err)
		c.close(CloseInternal, EndFailed)
		h.wg.Done()
		return
	}
	if prev != nil {
		c.inheritRemoteCalls(prev)
		prev.close(CloseReplaced, EndFailed)
	}
	h.metrics.connected.WithLabelValues(string(c.device.Kind)).Inc()
	if h.log.Enabled(ctx, slog.LevelDebug) {
		c.logger().Debug("connected")
	}
	// The hello's deadline goes: from here the heartbeat timer judges
	// silence, and pongs the library reads (takePong leaves it some) count.
	_ = c.ws.SetReadDeadline(time.Time{})
	c.ws.SetPongHandler(func(string) error { c.heard(); return nil })
	c.startWriting()
	if c.device.Kind == directory.KindDoorStation {
		h.pushDirectory(ctx, c)
		h.doorOnline(c.device)
	}
	h.ringLate(c)
	h.router.Announce(ctx, c.device, c.targets)
	c.read(false)
}

// served ends serving c, once its reader has stopped: it waits for the
// close, unregisters the connection and ends the device's part in its
// calls.
func (h *Hub) served(c *Conn) {
	defer h.wg.Done()
	ctx := context.Background()
	<-c.done
	h.metrics.connected.WithLabelValues(string(c.device.Kind)).Dec()
	h.metrics.disconnects.WithLabelValues(disconnectReason(c.closeCode)).Inc()
	if h.router.Detach(ctx, c) {
		h.leave(c)
	} else {
		h.handOver(c)
	}
	h.resume.closed(c, time.Now())
	if c.device.Kind == directory.KindDoorStation {
		h.doorGone(c.device, c.closeCode)
	}
	if h.log.Enabled(ctx, slog.LevelDebug) {
		c.logger().Debug("disconnected", "close_code", int(c.closeCode))
	}
}

func disconnectReason(code CloseCode) string {
	if code == 0 {
		return "peer"
	}
	return code.String()
}

// resumeTokens lets a device reconnect for a while with the token of its
// last welcome instead of its device token. Tokens are single-use.
type resumeTokens struct {
	mu       sync.Mutex
	byHash   map[directory.TokenHash]resumeEntry // guarded by mu
	expiring []directory.TokenHash               // guarded by mu; closed connections' tokens, oldest first
}

type resumeEntry struct {
	device  directory.TokenHash // the device token it stands for
	expires time.Time           // zero while the connection is open
}

func newResumeTokens() *resumeTokens {
	return &resumeTokens{byHash: make(map[directory.TokenHash]resumeEntry)}
}

// issue makes c's resume token (its hash is kept in c.resume) and forgets
// expired ones.
func (r *resumeTokens) issue(c *Conn, now time.Time) string {
	tok, hash := directory.NewToken()
	c.resume = hash
	r.mu.Lock()
	r.expireLocked(now)
	r.byHash[hash] = resumeEntry{device: c.token}
	r.mu.Unlock()
	return tok
}

// expireLocked forgets the tokens expired at now. Every token lives
// resumeTTL after its close, so expiring is in order. Both a connect and a
// close call it: were it only the closes, a storm of reconnects would find
// the tokens of the connections it replaced still kept, those of the one
// before too, until the next closes.
func (r *resumeTokens) expireLocked(now time.Time) {
	for len(r.expiring) > 0 {
		e, ok := r.byHash[r.expiring[0]]
		if ok && now.Before(e.expires) {
			break
		}
		delete(r.byHash, r.expiring[0])
		r.expiring = r.expiring[1:]
	}
}

// closed starts the expiry of c's resume token and forgets expired ones.
func (r *resumeTokens) closed(c *Conn, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(now)
	// Still there unless it was used to connect again (take).
	if e, ok := r.byHash[c.resume]; ok && e.expires.IsZero() {
		r.byHash[c.resume] = resumeEntry{device: e.device, expires: now.Add(resumeTTL)}
		r.expiring = append(r.expiring, c.resume)
	}
}

// take consumes a resume token and returns the device token hash it stands for.
func (r *resumeTokens) take(tok string, now time.Time) (directory.TokenHash, bool) {
	hash := directory.HashToken(tok)
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.byHash[hash]
	if !ok || (!e.expires.IsZero() && now.After(e.expires)) {
		return directory.TokenHash{}, false
	}
	delete(r.byHash, hash)
	return e.device, true
}

// bearerToken reads an Authorization header: "" (none) or "Bearer <token>",
// the scheme in any case (RFC 7235 §2.1). Anything else is not ok.
func bearerToken(h string) (string, bool) {
	if h == "" {
		return "", true
	}
	scheme, tok, found := strings.Cut(h, " ")
	tok = strings.TrimSpace(tok)
	if !found || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", false
	}
	return tok, true
}
